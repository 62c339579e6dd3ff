-- begin: a job the worker claimed (held in a batch, or not) starts now: `held` cleared,
-- `started_at` = now. Refused when it is no longer that worker's `started` job, or when a stop
-- was asked for meanwhile (the caller then ends it stopped, unrun).
-- ARGV: prefix, id, worker, now
-- Returns 'run', 'stop' or 'gone'.
local id = ARGV[2]
local key = jkey(id)
local h = redis.call('HMGET', key, 'status', 'worker', 'stop_requested')
if h[1] ~= 'started' or h[2] ~= ARGV[3] then return 'gone' end
if h[3] and h[3] ~= '0' then return 'stop' end
redis.call('HSET', key, 'held', '0', 'started_at', ARGV[4])
redis.call('ZADD', P .. 'started', ARGV[4], id)
return 'run'
