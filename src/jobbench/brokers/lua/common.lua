-- Shared helpers: the broker prepends this file to every script before registering it.
-- KEYS[1] is always the key prefix "jb:{<bench_id>}:" (ARGV[1] repeats it, so ARGV indexes
-- stay as they were); every key is derived from it. The braces are a Redis Cluster hash tag:
-- every derived key hashes to the prefix's slot, the slot Cluster routes the script to, so a
-- script never touches a key of another node. Times arrive from Python as strings and are
-- stored verbatim, so no precision is lost in Lua numbers.
local P = KEYS[1]
local STATUSES = {'queued', 'started', 'scheduled', 'finished', 'failed', 'stopped', 'canceled'}
local FINAL = {finished = true, failed = true, stopped = true, canceled = true}
local PENDING = {queued = true, started = true, scheduled = true}

local function jkey(id) return P .. 'job:' .. id end
local function qkey(queue) return P .. 'queue:' .. queue end
local function idx(queue, status) return P .. 'idx:' .. queue .. ':' .. status end

-- A member of the `expiring` zset carries status and queue, so cleanup can unindex a record
-- whose hash Redis already expired: "<status>|<#queue>|<queue><id>".
local function exp_member(status, queue, id)
  return status .. '|' .. #queue .. '|' .. queue .. id
end

local function parse_member(m)
  local a = string.find(m, '|', 1, true)
  local b = string.find(m, '|', a + 1, true)
  local n = tonumber(string.sub(m, a + 1, b - 1))
  return string.sub(m, 1, a - 1), string.sub(m, b + 1, b + n), string.sub(m, b + n + 1)
end

-- Wake one idle claimer of `queue`; tokens never outnumber the queued jobs.
local function wake(queue)
  local w = P .. 'wake:' .. queue
  if redis.call('LLEN', w) < redis.call('LLEN', qkey(queue)) then
    redis.call('RPUSH', w, '1')
  end
end

-- Waiters (wait_final) of a job hold the flag `waiting:<id>` (a short TTL they refresh) and
-- block on the list `done:<id>`, rotating it with BLMOVE so that every waiter wakes. When the
-- job ends (or goes away) with someone waiting, one token lands there, kept DONE_MS: enough for
-- a waiter between its check and its BLMOVE. No waiter, no key: the hot path pays one EXISTS.
local DONE_MS = 10000
local function notify(id)
  if redis.call('EXISTS', P .. 'waiting:' .. id) == 1 then
    local done = P .. 'done:' .. id
    if redis.call('LLEN', done) == 0 then redis.call('RPUSH', done, '1') end
    redis.call('PEXPIRE', done, DONE_MS)
  end
end

-- Dependencies and concurrency keys (lua/common_limits.lua, loaded after this file): a job
-- leaving `started` gives its key's slot back, a queued one leaves its key's parked list, and
-- a job becoming final (or a pending one deleted) settles the jobs that depend on it.
local release_slot, unqueue_keyed, resolve_dependents

-- Remove `id` from every structure that being (`queue`, `status`) puts it in; not the hash.
local function unindex(id, queue, status)
  redis.call('ZREM', idx(queue, status), id)
  if status == 'queued' then
    redis.call('LREM', qkey(queue), 1, id)
    unqueue_keyed(id)
  elseif status == 'started' then
    redis.call('ZREM', P .. 'started', id)
    release_slot(id)
  elseif status == 'scheduled' then
    redis.call('ZREM', P .. 'scheduled', id)
  elseif FINAL[status] then
    redis.call('ZREM', P .. 'expiring', exp_member(status, queue, id))
    if status == 'failed' then redis.call('ZREM', P .. 'failed:' .. queue, id) end
  end
end

-- Forget the entry (`id`, `queue`, `status`); delete the hash only if it is that record (an
-- expired hash may have been replaced by a new job with the same id). Returns whether a
-- stored record went away: the hash, or an expired one Redis already evicted.
local function drop(id, queue, status)
  unindex(id, queue, status)
  local cur = redis.call('HMGET', jkey(id), 'queue', 'status')
  if cur[1] == queue and cur[2] == status then
    redis.call('DEL', jkey(id))
    notify(id)
    if PENDING[status] then resolve_dependents(id, 'deleted') end
    redis.call('DEL', P .. 'dependents:' .. id)  -- its registrations go with it
    return true
  end
  return not cur[2]
end

-- Enter final `status` (the caller already left the previous one): index, expire.
local function finalize(id, queue, status, enqueued_at, expires_at, expire_ms)
  local key = jkey(id)
  redis.call('ZADD', idx(queue, status), enqueued_at, id)
  redis.call('ZADD', P .. 'expiring', expires_at, exp_member(status, queue, id))
  redis.call('HSET', key, 'expires_at', expires_at)
  redis.call('PEXPIREAT', key, expire_ms)
  notify(id)
  resolve_dependents(id, status, expires_at, expire_ms)
end

-- A job waiting elsewhere (scheduled, deferred) enters its queue: status queued, at the head
-- when `front` (its `front` mark cleared), else the tail; indexed and its queue's waiters woken.
local function enter_queue(id, queue, enqueued_at, front)
  local key = jkey(id)
  redis.call('HSET', key, 'status', 'queued')
  redis.call('HDEL', key, 'front')
  if front then
    redis.call('LPUSH', qkey(queue), id)
  else
    redis.call('RPUSH', qkey(queue), id)
  end
  redis.call('ZADD', idx(queue, 'queued'), enqueued_at, id)
  wake(queue)
end

-- A `scheduled` job (its hash fields h = status, queue, enqueued_at, front) goes to its queue:
-- the head for a delayed job enqueued at_front (`front`, forgotten here), else the tail.
local function promote_one(id, h)
  redis.call('ZREM', P .. 'scheduled', id)
  redis.call('ZREM', idx(h[2], 'scheduled'), id)
  redis.call('HDEL', jkey(id), 'retry_at')
  enter_queue(id, h[2], h[3], h[4] == '1')
end

-- Queue the scheduled jobs due by `now` (at most `limit`; -1: all), in due order; reads only
-- the due entries of the `scheduled` zset. Returns how many moved.
local function promote_due(now, limit)
  local n = 0
  local due = redis.call('ZRANGEBYSCORE', P .. 'scheduled', '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    local h = redis.call('HMGET', jkey(id), 'status', 'queue', 'enqueued_at', 'front')
    if h[1] == 'scheduled' then
      promote_one(id, h)
      n = n + 1
    else
      redis.call('ZREM', P .. 'scheduled', id)  -- a stale entry
    end
  end
  return n
end

local function trim_failed(queue, limit)
  local key = P .. 'failed:' .. queue
  local extra = redis.call('ZCARD', key) - limit
  if extra <= 0 then return end
  for _, id in ipairs(redis.call('ZRANGE', key, 0, extra - 1)) do drop(id, queue, 'failed') end
end

-- Running counters (one hash `counters`, field "<kind>|<#site>|<site><queue>") and the
-- duration histogram (one hash `durations`, fields "<le>|<queue>" with per-bucket counts, plus
-- "sum|<queue>" and "count|<queue>"). The bounds match DURATION_BUCKETS in brokers/base.py.
local BUCKETS = {'0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10',
  '30', '60', '300'}

local function count(site, queue, kind)
  site = site or ''
  redis.call('HINCRBY', P .. 'counters', kind .. '|' .. #site .. '|' .. site .. queue, 1)
end

-- Per-minute outcome counts for the dashboard's charts: one hash per hour `timeline:<hour>`,
-- field "<minute>|<kind>|<queue>", expiring TIMELINE_KEEP (brokers/base.py: 25 h) after its
-- hour ends, so nothing has to prune them.
local function timeline(queue, kind, now)
  local minute = math.floor(tonumber(now) / 60)
  local hour = math.floor(minute / 60)
  local key = P .. 'timeline:' .. hour
  redis.call('HINCRBY', key, minute .. '|' .. kind .. '|' .. queue, 1)
  redis.call('EXPIREAT', key, (hour + 1) * 3600 + 90000)
end

-- Count an attempt that ended as `kind` and record its duration (now - started_at).
local function settled(site, queue, kind, now, started_at)
  count(site, queue, kind)
  local d = tonumber(now) - tonumber(started_at or now)
  if d < 0 then d = 0 end
  local le = '+Inf'
  for _, b in ipairs(BUCKETS) do
    if d <= tonumber(b) then le = b; break end
  end
  local key = P .. 'durations'
  redis.call('HINCRBY', key, le .. '|' .. queue, 1)
  redis.call('HINCRBY', key, 'count|' .. queue, 1)
  redis.call('HINCRBYFLOAT', key, 'sum|' .. queue, string.format('%.17g', d))
  if kind == 'finished' or kind == 'failed' then timeline(queue, kind, now) end
end

-- Does a `started` record match the caller's worker ('' matches any)?
local function started_by(h_status, h_worker, worker)
  return h_status == 'started' and (worker == '' or h_worker == worker)
end

-- A `started` job that never ran (or was cut off through no fault of its own) goes back to
-- the head of its queue as `queued`, the reason kept in exc_info.
local function requeue_front(id, queue, enqueued_at, reason)
  local key = jkey(id)
  unindex(id, queue, 'started')
  redis.call('HDEL', key, 'started_at', 'worker', 'held')
  redis.call('HSET', key, 'status', 'queued', 'exc_info', reason, 'stop_requested', '0')
  redis.call('LPUSH', qkey(queue), id)
  redis.call('ZADD', idx(queue, 'queued'), enqueued_at, id)
  wake(queue)
end

-- fail(): retry as `scheduled` when asked and retries are left, else `failed` (+ trim).
-- r = {now, retry_at or '', expires_at, expire_ms, failed_limit}
local function fail_job(id, worker, exc, r)
  local key = jkey(id)
  local h = redis.call('HMGET', key, 'status', 'worker', 'queue', 'enqueued_at', 'retries_left',
    'site', 'started_at')
  if not started_by(h[1], h[2], worker) then return 0 end
  local queue = h[3]
  unindex(id, queue, 'started')
  settled(h[6], queue, 'failed', r[1], h[7])
  if r[2] ~= '' and tonumber(h[5] or '0') > 0 then
    redis.call('HSET', key, 'status', 'scheduled', 'retry_at', r[2], 'exc_info', exc,
      'ended_at', r[1])
    redis.call('HINCRBY', key, 'retries_left', -1)
    redis.call('HINCRBY', key, 'retry_count', 1)
    redis.call('ZADD', idx(queue, 'scheduled'), h[4], id)
    redis.call('ZADD', P .. 'scheduled', r[2], id)
    return 1
  end
  redis.call('HSET', key, 'status', 'failed', 'ended_at', r[1], 'exc_info', exc)
  redis.call('ZADD', P .. 'failed:' .. queue, r[1], id)
  finalize(id, queue, 'failed', h[4], r[3], r[4])
  trim_failed(queue, tonumber(r[5]))
  return 1
end
