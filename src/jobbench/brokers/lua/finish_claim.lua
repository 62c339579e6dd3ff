-- finish_claim: a worker's successes, then its next claim, in one atomic step (one round
-- trip): finish_job for each job, then claim_jobs (lua/common_claim.lua).
-- ARGV: prefix, worker, now, expires_at, expire_ms, limit, n,
--       id1, has_result1 '1'|'0', result1, ..., id_n, has_result_n, result_n,
--       m ('' = hold nothing), method1, ..., method_m (claim_jobs' hold), queue1, ...
-- Returns the claimed records (each as HGETALL's flat list), in claim order (maybe none).
local worker, now, n = ARGV[2], ARGV[3], tonumber(ARGV[7])
for i = 0, n - 1 do
  local j = 8 + 3 * i
  finish_job(ARGV[j], worker, now, ARGV[j + 1], ARGV[j + 2], ARGV[4], ARGV[5])
end
local at = 8 + 3 * n
local hold = nil
if ARGV[at] ~= '' then
  hold = {}
  for i = 1, tonumber(ARGV[at]) do hold[ARGV[at + i]] = true end
  at = at + tonumber(ARGV[at])
end
return claim_jobs(worker, now, tonumber(ARGV[6]), at + 1, hold)
