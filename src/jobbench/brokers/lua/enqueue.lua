-- enqueue: store a record as `queued` and push it on its queue, atomically.
-- ARGV: prefix, id, queue, at_front '1'|'0', deduplicate '1'|'0', max_queued or '',
--       enqueued_at, has_once_key '1'|'0', once_key, now, once_expires_at, field1, value1, ...
-- Returns 1 (enqueued), 0 (a pending duplicate exists, or the once-key is taken),
-- -1 (queue overloaded). Nothing is written unless it returns 1.
local id, queue = ARGV[2], ARGV[3]
local key = jkey(id)
local old = redis.call('HMGET', key, 'status', 'queue')
if ARGV[5] == '1' and PENDING[old[1]] then return 0 end
if ARGV[6] ~= '' and redis.call('LLEN', qkey(queue)) >= tonumber(ARGV[6]) then return -1 end
if ARGV[8] == '1' then
  local until_ = redis.call('ZSCORE', P .. 'once', ARGV[9])
  if until_ and tonumber(until_) > tonumber(ARGV[10]) then return 0 end
  redis.call('ZADD', P .. 'once', ARGV[11], ARGV[9])
end
if old[1] then
  unindex(id, old[2], old[1])
  redis.call('DEL', key)
end
redis.call('HSET', key, unpack(ARGV, 12))
if ARGV[4] == '1' then
  redis.call('LPUSH', qkey(queue), id)
else
  redis.call('RPUSH', qkey(queue), id)
end
redis.call('ZADD', idx(queue, 'queued'), ARGV[7], id)
redis.call('SADD', P .. 'queues', queue)
wake(queue)
return 1
