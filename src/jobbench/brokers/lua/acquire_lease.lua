-- acquire_lease: take a free (or expired) lease, or renew one's own. Returns 1 when `owner`
-- holds it afterwards. ARGV: prefix, name, owner, ttl_ms
local key = P .. 'lease:' .. ARGV[2]
local holder = redis.call('GET', key)
if holder and holder ~= ARGV[3] then return 0 end
redis.call('SET', key, ARGV[3], 'PX', ARGV[4])
return 1
