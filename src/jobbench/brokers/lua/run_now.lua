-- run_now: a `scheduled` job (delayed or waiting for a retry) is queued at once, where
-- promote_due would put it.
-- ARGV: prefix, id.  Returns 1 when it was queued, else 0.
local id = ARGV[2]
local h = redis.call('HMGET', jkey(id), 'status', 'queue', 'enqueued_at', 'front')
if h[1] ~= 'scheduled' then return 0 end
promote_one(id, h)
return 1
