-- The worker's hot path, shared by claim.lua, finish.lua and finish_claim.lua (loaded after
-- common.lua and common_limits.lua).

-- A job `started` by `worker` becomes `finished`, kept until expires_at. Returns 1 when the
-- job changed, else 0.
local function finish_job(id, worker, now, has_result, result, expires_at, expire_ms)
  local key = jkey(id)
  local h = redis.call('HMGET', key, 'status', 'worker', 'queue', 'enqueued_at', 'progress',
    'site', 'started_at')
  if h[1] ~= 'started' or h[2] ~= worker then return 0 end
  unindex(id, h[3], 'started')
  settled(h[6], h[3], 'finished', now, h[7])
  redis.call('HSET', key, 'status', 'finished', 'ended_at', now)
  if has_result == '1' then
    redis.call('HSET', key, 'result', result)
  else
    redis.call('HDEL', key, 'result')
  end
  if h[5] then redis.call('HSET', key, 'progress', '100') end
  finalize(id, h[3], 'finished', h[4], expires_at, expire_ms)
  return 1
end

-- Pop up to `limit` jobs, the first ones of the first non-empty queues (ARGV[first], ...,
-- in that order), and mark them `started` by the worker. Wake lists of queues found empty
-- are deleted in the same step, so a claimer that then blocks on them cannot miss a later
-- enqueue. Scheduled jobs that are due are queued first (a bounded batch), so a delayed job
-- or a retry does not wait for a worker's housekeeping. A job whose concurrency key has no
-- free slot is parked (lua/common_limits.lua) and the claim goes on with the next one.
-- With `hold` (a set of methods: those the worker starts at once, its async ones), a job of
-- any other method behind one such job taken in this batch is claimed held: it waits for the
-- worker's main thread, which begins it (lua/begin.lua). Returns the records (each as
-- HGETALL's flat list), in claim order.
local function claim_jobs(worker, now, limit, first, hold)
  local taken = {}
  if limit <= 0 then return taken end
  local inline_taken = false
  promote_due(now, 1000)
  for i = first, #ARGV do
    local queue = ARGV[i]
    while #taken < limit do
      local id = redis.call('LPOP', qkey(queue))
      if not id then break end
      local key = jkey(id)
      local h = redis.call('HMGET', key, 'status', 'queue', 'enqueued_at', 'site',
        'concurrency_key', 'concurrency_limit', 'method')
      local ck = h[5]
      if h[1] == 'queued' and h[2] == queue and ck
          and not slot_free(ck, tonumber(h[6] or '1') or 1) then
        park(id, ck)  -- its key is at its limit: the jobs behind it are still claimable
      elseif h[1] == 'queued' and h[2] == queue then
        if ck then redis.call('SADD', P .. 'running:' .. ck, id) end
        local held = '0'
        if hold and not hold[h[7] or ''] then
          if inline_taken then held = '1' end
          inline_taken = true
        end
        redis.call('HSET', key, 'status', 'started', 'worker', worker, 'started_at', now,
          'stop_requested', '0', 'held', held)
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
  return taken
end
