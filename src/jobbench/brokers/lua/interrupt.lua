-- interrupt: a `started` job (by worker; '' = any) cut off through no fault of its own (its
-- executor was killed to hard-stop a sibling) goes back to the head of its queue as `queued`,
-- the reason kept in exc_info.
-- ARGV: prefix, id, worker, reason
-- Returns 1 when the job changed, else 0.
local id = ARGV[2]
local key = jkey(id)
local h = redis.call('HMGET', key, 'status', 'worker', 'queue', 'enqueued_at')
if not started_by(h[1], h[2], ARGV[3]) then return 0 end
local queue = h[3]
unindex(id, queue, 'started')
redis.call('HDEL', key, 'started_at', 'worker')
redis.call('HSET', key, 'status', 'queued', 'exc_info', ARGV[4], 'stop_requested', '0')
redis.call('LPUSH', qkey(queue), id)
redis.call('ZADD', idx(queue, 'queued'), h[4], id)
wake(queue)
return 1
