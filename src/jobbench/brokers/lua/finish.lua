-- finish: a job `started` by the worker becomes `finished`, kept until expires_at.
-- ARGV: prefix, id, worker, now, has_result '1'|'0', result, expires_at, expire_ms
-- Returns 1 when the job changed, else 0.
local id, worker = ARGV[2], ARGV[3]
local key = jkey(id)
local h = redis.call('HMGET', key, 'status', 'worker', 'queue', 'enqueued_at', 'progress',
  'site', 'started_at')
if h[1] ~= 'started' or h[2] ~= worker then return 0 end
unindex(id, h[3], 'started')
settled(h[6], h[3], 'finished', ARGV[4], h[7])
redis.call('HSET', key, 'status', 'finished', 'ended_at', ARGV[4])
if ARGV[5] == '1' then
  redis.call('HSET', key, 'result', ARGV[6])
else
  redis.call('HDEL', key, 'result')
end
if h[5] then redis.call('HSET', key, 'progress', '100') end
finalize(id, h[3], 'finished', h[4], ARGV[7], ARGV[8])
return 1
