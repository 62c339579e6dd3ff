-- delete: remove a record that is not `started` and all its index entries.
-- ARGV: prefix, id.  Returns 1 when something was deleted, else 0.
local id = ARGV[2]
local h = redis.call('HMGET', jkey(id), 'status', 'queue')
if not h[1] or h[1] == 'started' then return 0 end
drop(id, h[2], h[1])
return 1
