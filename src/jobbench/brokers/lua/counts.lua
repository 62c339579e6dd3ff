-- counts: {queue, status, n, ...} over every stored record whose retention has not expired
-- by `now`; only non-zero counts. ARGV: prefix, now
local expired = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiring', '-inf', ARGV[2])) do
  local status, queue = parse_member(m)
  local k = idx(queue, status)
  expired[k] = (expired[k] or 0) + 1
end
local out = {}
for _, queue in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
  for _, status in ipairs(STATUSES) do
    local k = idx(queue, status)
    local n = redis.call('ZCARD', k) - (expired[k] or 0)
    if n > 0 then
      table.insert(out, queue)
      table.insert(out, status)
      table.insert(out, n)
    end
  end
end
return out
