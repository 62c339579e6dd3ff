-- mark_stopped: a `started` job (by worker; '' = any) becomes `stopped` with the reason.
-- ARGV: prefix, id, worker, reason, now, expires_at, expire_ms
-- Returns 1 when the job changed, else 0.
local id = ARGV[2]
local key = jkey(id)
local h = redis.call('HMGET', key, 'status', 'worker', 'queue', 'enqueued_at', 'site')
if not started_by(h[1], h[2], ARGV[3]) then return 0 end
unindex(id, h[3], 'started')
count(h[5], h[3], 'stopped')
redis.call('HSET', key, 'status', 'stopped', 'ended_at', ARGV[5], 'exc_info', ARGV[4])
finalize(id, h[3], 'stopped', h[4], ARGV[6], ARGV[7])
return 1
