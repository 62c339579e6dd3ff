-- workers: info JSON of every worker whose heartbeat expires after `now`. ARGV: prefix, now
local out = {}
for _, name in ipairs(redis.call('ZRANGEBYSCORE', P .. 'workers', '(' .. ARGV[2], '+inf')) do
  local info = redis.call('GET', P .. 'worker:' .. name)
  if info then table.insert(out, info) end
end
return out
