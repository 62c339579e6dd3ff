-- claim: up to `limit` jobs of the queues, in the order given, marked `started` by the
-- worker, atomically (claim_jobs in lua/common_claim.lua).
-- ARGV: prefix, worker, now, limit, queue1, queue2, ...
-- Returns a list of records (each as HGETALL's flat list), in claim order; when it claimed
-- none: when the earliest scheduled job falls due (a string, so the claimer can wake then),
-- or false.
local taken = claim_jobs(ARGV[2], ARGV[3], tonumber(ARGV[4]), 5)
if #taken > 0 then return taken end
local nxt = redis.call('ZRANGE', P .. 'scheduled', 0, 0, 'WITHSCORES')
if nxt[2] then return nxt[2] end
return false
