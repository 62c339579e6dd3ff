-- claim: pop up to `limit` jobs, the first ones of the first non-empty queues (in the order
-- given), and mark them `started` by the worker, atomically. Wake lists of queues found empty
-- are deleted here, in the same step, so a claimer that then blocks on them cannot miss a
-- later enqueue. Scheduled jobs that are due are queued first (a bounded batch), so a delayed
-- job or a retry does not wait for a worker's housekeeping. A job whose concurrency key has
-- no free slot is parked (lua/common_limits.lua) and the claim goes on with the next one.
-- ARGV: prefix, worker, now, limit, queue1, queue2, ...
-- Returns a list of records (each as HGETALL's flat list), in claim order; when it claimed
-- none: when the earliest scheduled job falls due (a string, so the claimer can wake then),
-- or false.
local worker, now, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local taken = {}
promote_due(now, 1000)
for i = 5, #ARGV do
  local queue = ARGV[i]
  while #taken < limit do
    local id = redis.call('LPOP', qkey(queue))
    if not id then break end
    local key = jkey(id)
    local h = redis.call('HMGET', key, 'status', 'queue', 'enqueued_at', 'site',
      'concurrency_key', 'concurrency_limit')
    local ck = h[5]
    if h[1] == 'queued' and h[2] == queue and ck
        and not slot_free(ck, tonumber(h[6] or '1') or 1) then
      park(id, ck)  -- its key is at its limit: the jobs behind it are still claimable
    elseif h[1] == 'queued' and h[2] == queue then
      if ck then redis.call('SADD', P .. 'running:' .. ck, id) end
      redis.call('HSET', key, 'status', 'started', 'worker', worker, 'started_at', now,
        'stop_requested', '0')
      redis.call('HINCRBY', key, 'attempts', 1)
      redis.call('ZREM', idx(queue, 'queued'), id)
      redis.call('ZADD', idx(queue, 'started'), h[3], id)
      redis.call('ZADD', P .. 'started', now, id)
      count(h[4], queue, 'started')
      taken[#taken + 1] = redis.call('HGETALL', key)
    end
  end
  if #taken >= limit then return taken end
  redis.call('DEL', P .. 'wake:' .. queue)
end
if #taken > 0 then return taken end
local nxt = redis.call('ZRANGE', P .. 'scheduled', 0, 0, 'WITHSCORES')
if nxt[2] then return nxt[2] end
return false
