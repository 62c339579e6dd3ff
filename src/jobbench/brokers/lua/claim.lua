-- claim: up to `limit` jobs of the queues, in the order given, marked `started` by the
-- worker, atomically (claim_jobs in lua/common_claim.lua).
-- ARGV: prefix, worker, now, limit, deferred, queue1, queue2, ...
-- Returns a list of records (each as HGETALL's flat list), in claim order; when it claimed
-- none: when the earliest scheduled job falls due (a string, so the claimer can wake then),
-- or false.
--
-- A waiting claimer sends this script behind its BLPOP on the wake lists, in one write
-- (RedisBroker.claim): the server runs it the moment the BLPOP returns, which saves the
-- round trip of claiming after the wake. `now` was read before the wait, so such a claim
-- passes deferred = '1', and its time is the claimer's clock as of its last empty claim
-- plus the seconds the server has counted since then (P claimwait:<worker>, written by
-- every claim that found nothing): started_at stays on the worker's clock, not the wait's
-- start and not the server's clock.
local worker, now = ARGV[2], ARGV[3]
local mark = P .. 'claimwait:' .. worker
local t = redis.call('TIME')
local server_now = tonumber(t[1]) + tonumber(t[2]) / 1e6
if ARGV[5] == '1' then
  local seen = redis.call('GET', mark)
  if seen then
    local was, at = string.match(seen, '^(%S+) (%S+)$')
    if was and at then
      now = string.format('%.6f', tonumber(was) + math.max(0, server_now - tonumber(at)))
    end
  end
end
local taken = claim_jobs(worker, now, tonumber(ARGV[4]), 6)
if #taken > 0 then return taken end
redis.call('SET', mark, now .. ' ' .. string.format('%.6f', server_now), 'EX', 600)
local nxt = redis.call('ZRANGE', P .. 'scheduled', 0, 0, 'WITHSCORES')
if nxt[2] then return nxt[2] end
return false
