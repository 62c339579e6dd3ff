-- requeue: a final job goes back to the tail of its queue as `queued`, outcome cleared.
-- ARGV: prefix, id, now
-- Returns 1 when requeued, 0 for a pending or unknown job.
local id, now = ARGV[2], ARGV[3]
local key = jkey(id)
local h = redis.call('HMGET', key, 'status', 'queue')
if not FINAL[h[1]] then return 0 end
local queue = h[2]
unindex(id, queue, h[1])
redis.call('PERSIST', key)
redis.call('DEL', P .. 'done:' .. id)  -- its last end is no longer news
redis.call('HDEL', key, 'result', 'exc_info', 'ended_at', 'started_at', 'worker', 'expires_at',
  'progress', 'stage', 'front')
redis.call('HSET', key, 'status', 'queued', 'stop_requested', '0', 'enqueued_at', now)
redis.call('RPUSH', qkey(queue), id)
redis.call('ZADD', idx(queue, 'queued'), now, id)
wake(queue)
return 1
