-- release_lease: drop the lease if `owner` holds it. ARGV: prefix, name, owner
local key = P .. 'lease:' .. ARGV[2]
if redis.call('GET', key) == ARGV[3] then redis.call('DEL', key) end
return 0
