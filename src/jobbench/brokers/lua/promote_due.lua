-- promote_due: every `scheduled` job whose retry_at has passed goes to its queue's tail.
-- ARGV: prefix, now.  Returns how many moved.
local n = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'scheduled', '-inf', ARGV[2])) do
  local key = jkey(id)
  local h = redis.call('HMGET', key, 'status', 'queue', 'enqueued_at')
  redis.call('ZREM', P .. 'scheduled', id)
  if h[1] == 'scheduled' then
    redis.call('ZREM', idx(h[2], 'scheduled'), id)
    redis.call('HSET', key, 'status', 'queued')
    redis.call('HDEL', key, 'retry_at')
    redis.call('RPUSH', qkey(h[2]), id)
    redis.call('ZADD', idx(h[2], 'queued'), h[3], id)
    wake(h[2])
    n = n + 1
  end
end
return n
