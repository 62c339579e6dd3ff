-- request_stop: cancel a queued, scheduled or deferred job at once (its dependents follow);
-- flag a started one for its worker.
-- ARGV: prefix, id, now, expires_at, expire_ms
-- Returns the status after the call, or false when there is no such job.
local id = ARGV[2]
local key = jkey(id)
local h = redis.call('HMGET', key, 'status', 'queue', 'enqueued_at')
local status = h[1]
if not status then return false end
if status == 'queued' or status == 'scheduled' or status == 'deferred' then
  unindex(id, h[2], status)
  redis.call('HSET', key, 'status', 'canceled', 'ended_at', ARGV[3])
  redis.call('HDEL', key, 'front')  -- a requeue later goes to the tail
  finalize(id, h[2], 'canceled', h[3], ARGV[4], ARGV[5])
  return 'canceled'
end
if status == 'started' then redis.call('HSET', key, 'stop_requested', '1') end
return status
