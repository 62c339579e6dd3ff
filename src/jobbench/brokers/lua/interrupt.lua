-- interrupt: a `started` job (by worker; '' = any) cut off through no fault of its own (its
-- executor was killed to hard-stop a sibling) goes back to the head of its queue as `queued`,
-- the reason kept in exc_info.
-- ARGV: prefix, id, worker, reason
-- Returns 1 when the job changed, else 0.
local id = ARGV[2]
local h = redis.call('HMGET', jkey(id), 'status', 'worker', 'queue', 'enqueued_at')
if not started_by(h[1], h[2], ARGV[3]) then return 0 end
requeue_front(id, h[3], h[4], ARGV[4])
return 1
