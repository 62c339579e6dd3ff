-- enqueue: store a record as `queued` and push it on its queue, atomically.
-- ARGV: prefix, id, queue, at_front '1'|'0', deduplicate '1'|'0', max_queued or '',
--       enqueued_at, field1, value1, ...
-- Returns 1 (enqueued), 0 (a pending duplicate exists), -1 (queue overloaded, nothing written).
local id, queue = ARGV[2], ARGV[3]
local key = jkey(id)
local old = redis.call('HMGET', key, 'status', 'queue')
if ARGV[5] == '1' and PENDING[old[1]] then return 0 end
if ARGV[6] ~= '' and redis.call('LLEN', qkey(queue)) >= tonumber(ARGV[6]) then return -1 end
if old[1] then
  unindex(id, old[2], old[1])
  redis.call('DEL', key)
end
redis.call('HSET', key, unpack(ARGV, 8))
if ARGV[4] == '1' then
  redis.call('LPUSH', qkey(queue), id)
else
  redis.call('RPUSH', qkey(queue), id)
end
redis.call('ZADD', idx(queue, 'queued'), ARGV[7], id)
redis.call('SADD', P .. 'queues', queue)
wake(queue)
return 1
