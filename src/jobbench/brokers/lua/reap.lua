-- reap: settle started jobs whose worker's heartbeat expired by `at` (retried when retries are
-- left, else failed with exc_info; a held one, which never ran, back to the head of its queue
-- with the reason `held_reason`), then forget the expired workers.
-- ARGV: prefix, at, exc_info, now, expires_at, expire_ms, failed_limit, held_reason
-- Returns the ids settled.
local at = ARGV[2]
local at_n = tonumber(at)
local settled = {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'started', 0, -1)) do
  local h = redis.call('HMGET', jkey(id), 'status', 'worker', 'held', 'queue', 'enqueued_at')
  if h[1] ~= 'started' then
    redis.call('ZREM', P .. 'started', id)
  else
    local beat = h[2] and redis.call('ZSCORE', P .. 'workers', h[2])
    if beat and tonumber(beat) > at_n then
      -- alive
    elseif h[3] == '1' then
      requeue_front(id, h[4], h[5], ARGV[8])
      table.insert(settled, id)
    else
      local r = {ARGV[4], at, ARGV[5], ARGV[6], ARGV[7]}
      if fail_job(id, h[2] or '', ARGV[3], r) == 1 then table.insert(settled, id) end
    end
  end
end
for _, name in ipairs(redis.call('ZRANGEBYSCORE', P .. 'workers', '-inf', at)) do
  redis.call('DEL', P .. 'worker:' .. name)
end
redis.call('ZREMRANGEBYSCORE', P .. 'workers', '-inf', at)
return settled
