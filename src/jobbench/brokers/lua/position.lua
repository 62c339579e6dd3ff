-- position: 0-based index of a queued job in its queue, or false. ARGV: prefix, id
local h = redis.call('HMGET', jkey(ARGV[2]), 'status', 'queue')
if h[1] ~= 'queued' then return false end
return redis.call('LPOS', qkey(h[2]), ARGV[2])
