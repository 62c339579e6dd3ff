-- Dependencies and concurrency keys: loaded after common.lua (whose unindex, drop and finalize
-- call the three functions it declares and this file defines), before each script.
--
--   P dependents:<id>   set    ids of jobs that were enqueued depending on job <id>, kept
--                              until <id>'s record expires (so its settled dependents can
--                              still be found: their Background Tasks follow)
--   P running:<key>     set    ids of `started` jobs with concurrency_key <key>
--   P parked:<key>      list   ids of `queued` jobs of <key> taken off their queue by a claim
--                              while the key had no free slot (hash field `parked` = '1')
STATUSES[#STATUSES + 1] = 'deferred'
PENDING.deferred = true
local DEFAULT_CANCEL_TTL = 7 * 24 * 3600  -- Retention().failure_ttl, when no caller gave one

local function now_str()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end

local function decode_ids(raw)
  if not raw or raw == '' then return {} end
  local ok, ids = pcall(cjson.decode, raw)
  if ok and type(ids) == 'table' then return ids end
  return {}
end

local function caller_id(id)
  local at = string.find(id, '::', 1, true)
  return at and string.sub(id, at + 2) or id
end

local DEP_WORDS = {failed = 'failed', stopped = 'was stopped', canceled = 'was canceled',
  deleted = 'was deleted', missing = 'was not enqueued'}
local function dependency_reason(dep, status)
  return "canceled: its dependency '" .. caller_id(dep) .. "' " .. (DEP_WORDS[status] or status)
end

-- -- concurrency keys -------------------------------------------------------------------------
local function running_key(ck) return P .. 'running:' .. ck end
local function parked_key(ck) return P .. 'parked:' .. ck end

-- Started jobs of key `ck`: the members of running:<ck> that still are (stale ones dropped).
local function running(ck)
  local s, n = running_key(ck), 0
  for _, m in ipairs(redis.call('SMEMBERS', s)) do
    local h = redis.call('HMGET', jkey(m), 'status', 'concurrency_key')
    if h[1] == 'started' and h[2] == ck then n = n + 1 else redis.call('SREM', s, m) end
  end
  return n
end

-- May one more job of `ck` start under `limit`? (SCARD first: one command below the limit.)
local function slot_free(ck, limit)
  if redis.call('SCARD', running_key(ck)) < limit then return true end
  return running(ck) < limit
end

-- A claim found `id` (queued, of key `ck`) with no free slot: off its queue, onto the key's
-- parked list, still `queued`. Jobs behind it in its queue stay claimable.
local function park(id, ck)
  redis.call('RPUSH', parked_key(ck), id)
  redis.call('HSET', jkey(id), 'parked', '1')
end

-- Put parked jobs of `ck` back at the head of their queues, as many as the key has free slots.
local function unpark(ck)
  local pk = parked_key(ck)
  local first = redis.call('LINDEX', pk, 0)
  if not first then return end
  local limit = tonumber(redis.call('HGET', jkey(first), 'concurrency_limit') or '1') or 1
  local room, moved = limit - running(ck), {}
  while room > 0 do
    local id = redis.call('LPOP', pk)
    if not id then break end
    local h = redis.call('HMGET', jkey(id), 'status', 'queue', 'concurrency_key', 'parked')
    if h[1] == 'queued' and h[3] == ck and h[4] then
      redis.call('HDEL', jkey(id), 'parked')
      moved[#moved + 1] = {id, h[2]}
      room = room - 1
    end
  end
  for i = #moved, 1, -1 do  -- pushed last first, so they keep their parked order
    redis.call('LPUSH', qkey(moved[i][2]), moved[i][1])
    wake(moved[i][2])
  end
end

release_slot = function(id)
  local ck = redis.call('HGET', jkey(id), 'concurrency_key')
  if not ck then return end
  redis.call('SREM', running_key(ck), id)
  unpark(ck)
end

-- A queued job leaves (canceled, deleted, replaced): off the parked list if it was there, and
-- if it was holding a place unparked for a slot, the next parked one gets it.
unqueue_keyed = function(id)
  local h = redis.call('HMGET', jkey(id), 'concurrency_key', 'parked')
  if not h[1] then return end
  if h[2] then
    redis.call('LREM', parked_key(h[1]), 1, id)
    redis.call('HDEL', jkey(id), 'parked')
  end
  unpark(h[1])
end

-- -- dependencies -----------------------------------------------------------------------------
-- Is dependency `dep` done for a dependent (finished; or any end with `allow`)? A record that
-- is gone counts as done: its dependents were settled when it ended or was deleted.
local function dep_done(dep, allow)
  local s = redis.call('HGET', jkey(dep), 'status')
  return (not s) or s == 'finished' or (allow and FINAL[s] == true)
end

-- A deferred job (h = status, depends_on, allow, queue, enqueued_at, front) goes to its queue.
local function release_deferred(id, h)
  redis.call('ZREM', idx(h[4], 'deferred'), id)
  enter_queue(id, h[4], h[5], h[6] == '1')
end

local function cancel_deferred(id, h, reason, exp, exp_ms)
  local key = jkey(id)
  redis.call('ZREM', idx(h[4], 'deferred'), id)
  redis.call('HSET', key, 'status', 'canceled', 'ended_at', now_str(), 'exc_info', reason)
  redis.call('HDEL', key, 'front')
  finalize(id, h[4], 'canceled', h[5], exp, exp_ms)  -- which settles its own dependents
end

local function contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

local function resolve_one(id, status, exp, exp_ms)
  local dkey = P .. 'dependents:' .. id
  local waiting = redis.call('SMEMBERS', dkey)
  if #waiting == 0 then return end
  redis.call('PEXPIREAT', dkey, exp_ms)  -- goes with the record; a new dependent persists it
  for _, d in ipairs(waiting) do
    local h = redis.call('HMGET', jkey(d), 'status', 'depends_on', 'allow_dependency_failure',
      'queue', 'enqueued_at', 'front')
    local deps = h[1] == 'deferred' and decode_ids(h[2]) or {}
    if contains(deps, id) then  -- else a stale entry (the dependent was replaced or ended)
      local allow = h[3] == '1'
      if status ~= 'finished' and not allow then
        cancel_deferred(d, h, dependency_reason(id, status), exp, exp_ms)
      else
        local ready = true
        for _, dep in ipairs(deps) do
          if not dep_done(dep, allow) then ready = false; break end
        end
        if ready then release_deferred(d, h) end
      end
    end
  end
end

-- Job `id` ended as `status` (or was deleted while pending: 'deleted'): its dependents go to
-- their queues once all their dependencies are done, or are canceled with the reason, and so
-- on down the chain. A work list, not recursion: cancel_deferred's finalize lands here again.
local resolving = nil
resolve_dependents = function(id, status, exp, exp_ms)
  if not exp then
    exp = tostring(tonumber(now_str()) + DEFAULT_CANCEL_TTL)
    exp_ms = string.format('%d', math.ceil(tonumber(exp) * 1000))
  end
  if resolving then
    resolving[#resolving + 1] = {id, status, exp, exp_ms}
    return
  end
  resolving = {{id, status, exp, exp_ms}}
  local i = 1
  while i <= #resolving do
    local r = resolving[i]
    resolve_one(r[1], r[2], r[3], r[4])
    i = i + 1
  end
  resolving = nil
end
