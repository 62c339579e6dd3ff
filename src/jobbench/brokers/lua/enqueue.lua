-- enqueue: store records as `queued` (pushed on their queues) or, delayed, as `scheduled`; one
-- job or a whole batch (enqueue_many), in order, in this one atomic step. All or nothing:
-- with max_queued (the one refusal) a first pass decides every item without writing, so a
-- refusal returns before anything changed; without it nothing can refuse, and each item is
-- decided (duplicate? once-key taken?) as it is written, earlier items' writes in view.
-- Dependencies: an item with depends_on is stored `deferred` while one of them is pending
-- (and registered in their dependents sets), queued when all are done, or `canceled` with
-- the reason when one failed, stopped or was canceled; a dependency that no stored record and
-- no earlier item of the batch has refuses the batch, before anything is written.
-- ARGV: prefix, now, once_expires_at, max_queued or '', deps ('' when no item has
-- depends_on, else when a canceled dependent's record expires), m, m (field, value) pairs
-- every record of the batch has, then per item:
--   id, queue, flags (5 chars '0'|'1': at_front, deduplicate, has_once_key, new_id: a fresh
--   random id no record can have, so no old record is looked for, has depends_on), once_key,
--   run_at ('' unless delayed), enqueued_at, n, field1, value1, ... (n pairs: the record's
--   own fields; id, queue, enqueued_at, status and retry_at are written from the header)
-- Returns {1|0|3|4, ...} per item (0: a pending duplicate, or the once-key is taken; 3:
-- deferred; 4: canceled for its dependency), or {-1, queue} when that queue already holds
-- max_queued jobs, or {-2, id} for an unknown dependency (nothing written).
local now = tonumber(ARGV[2])
local max_queued = ARGV[4] ~= '' and tonumber(ARGV[4]) or nil
local ONE = string.byte('1')
local NONE = {false, false}  -- HMGET's answer for a key that does not exist
local cancel_expires = ARGV[5]
local shared_end = 6 + 2 * tonumber(ARGV[6])
local FIRST_ITEM = shared_end + 1

-- The item whose header starts at ARGV[i], and where the next one starts.
local function parse(i)
  local n, flags = tonumber(ARGV[i + 6]), ARGV[i + 2]
  local once = string.byte(flags, 3) == ONE and ARGV[i + 3] or nil
  return {
    id = ARGV[i], queue = ARGV[i + 1], front = string.byte(flags, 1) == ONE,
    dedup = string.byte(flags, 2) == ONE, once = once, run_at = ARGV[i + 4],
    new = string.byte(flags, 4) == ONE, deps = string.byte(flags, 5) == ONE,
    enq = ARGV[i + 5], first = i + 7, last = i + 6 + 2 * n,
  }, i + 7 + 2 * n
end

local function once_taken(key)
  local until_ = redis.call('ZSCORE', P .. 'once', key)
  return until_ and tonumber(until_) > now
end

-- pass 1 (max_queued only): decide every item. `state` follows each id through the batch,
-- `lengths` each queue, `keys` the once-keys the batch takes.
local function decide(items, out)
  local state, lengths, keys = {}, {}, {}
  local function status_of(id, new)
    if state[id] == nil and new then state[id] = {'', ''} end
    if state[id] == nil then
      local h = redis.call('HMGET', jkey(id), 'status', 'queue')
      state[id] = {h[1] or '', h[2] or ''}
    end
    return state[id]
  end
  local function length(queue)
    if lengths[queue] == nil then lengths[queue] = redis.call('LLEN', qkey(queue)) end
    return lengths[queue]
  end
  for k, it in ipairs(items) do
    local take = not (it.dedup and PENDING[status_of(it.id, it.new)[1]])
    local immediate = it.run_at == '' and not it.deps
    if take and immediate and length(it.queue) >= max_queued then return it.queue end
    if take and it.once and (keys[it.once] or once_taken(it.once)) then take = false end
    if take then
      if it.once then keys[it.once] = true end
      local old = status_of(it.id, it.new)
      if old[1] == 'queued' then lengths[old[2]] = length(old[2]) - 1 end
      if immediate then lengths[it.queue] = length(it.queue) + 1 end
      state[it.id] = {immediate and 'queued' or 'scheduled', it.queue}
    end
    it.take = take
    out[k] = take and 1 or 0
  end
  return nil
end

-- Writing. Queue entries are collected per queue and pushed at the end, a few commands for
-- the whole batch; `pending` finds an entry again when a later item replaces its job.
local seen, heads, tails, scores, pending = {}, {}, {}, {}, {}
local function drop_pending(id)
  local at = pending[id]
  if at then
    at[1][at[2]] = false
    at[3][at[4]], at[3][at[4] + 1] = false, false
    pending[id] = nil
  end
end

local function collect(it)
  local queue = it.queue
  if not scores[queue] then heads[queue], tails[queue], scores[queue] = {}, {}, {} end
  local list = it.front and heads[queue] or tails[queue]
  local z = scores[queue]
  list[#list + 1] = it.id
  z[#z + 1] = it.enq
  z[#z + 1] = it.id
  if not it.new then pending[it.id] = {list, #list, z, #z - 1} end  -- a new id is not replaced
end

-- HSET of a record: the header's fields, the batch's shared ones, the item's own. The usual
-- shapes (a queued job owning 1 to 3 fields, e.g. payload and signature) are passed straight
-- to redis.call; building a table per job costs as much as the HSET itself.
local SHARED = {}
for k = 7, shared_end do SHARED[#SHARED + 1] = ARGV[k] end
local function store(key, it, status)
  local f, n = it.first, (it.last - it.first + 1) / 2
  local id, queue, enq = it.id, it.queue, it.enq
  if status == 'queued' and n == 2 then
    return redis.call('HSET', key, 'id', id, 'queue', queue, 'enqueued_at', enq, 'status',
      status, ARGV[f], ARGV[f + 1], ARGV[f + 2], ARGV[f + 3], unpack(SHARED))
  elseif status == 'queued' and n == 3 then
    return redis.call('HSET', key, 'id', id, 'queue', queue, 'enqueued_at', enq, 'status',
      status, ARGV[f], ARGV[f + 1], ARGV[f + 2], ARGV[f + 3], ARGV[f + 4], ARGV[f + 5],
      unpack(SHARED))
  elseif status == 'queued' and n == 1 then
    return redis.call('HSET', key, 'id', id, 'queue', queue, 'enqueued_at', enq, 'status',
      status, ARGV[f], ARGV[f + 1], unpack(SHARED))
  end
  local h = {'id', id, 'queue', queue, 'enqueued_at', enq, 'status', status}
  for k = 1, #SHARED do h[#h + 1] = SHARED[k] end
  for k = it.first, it.last do h[#h + 1] = ARGV[k] end
  if status == 'scheduled' then
    local m = #h
    h[m + 1], h[m + 2] = 'retry_at', it.run_at
    if it.front then h[m + 3], h[m + 4] = 'front', '1' end
  end
  return redis.call('HSET', key, unpack(h))
end

-- The value of record field `name` of an item: its own fields, else the batch's shared ones.
local function field_of(it, name)
  for k = it.first, it.last, 2 do
    if ARGV[k] == name then return ARGV[k + 1] end
  end
  for k = 1, #SHARED, 2 do
    if SHARED[k] == name then return SHARED[k + 1] end
  end
  return nil
end

-- The first dependency of the batch that neither a stored record nor an earlier item has.
local function unknown_dependency(items)
  local ids = {}
  for _, it in ipairs(items) do
    if it.deps then
      for _, dep in ipairs(decode_ids(field_of(it, 'depends_on'))) do
        if not ids[dep] and redis.call('EXISTS', jkey(dep)) == 0 then return dep end
      end
    end
    ids[it.id] = true
  end
  return nil
end

-- An item's dependencies as they stand: the pending ones, or the reason it is canceled.
local function dependencies(it)
  local allow = field_of(it, 'allow_dependency_failure') == '1'
  local waiting = {}
  for _, dep in ipairs(decode_ids(field_of(it, 'depends_on'))) do
    local s = redis.call('HGET', jkey(dep), 'status') or 'missing'
    if PENDING[s] then
      waiting[#waiting + 1] = dep
    elseif s ~= 'finished' and not allow then
      return nil, dependency_reason(dep, s)
    end
  end
  return waiting, nil
end

-- Store an item with dependencies that is not queued at once: deferred (3) or canceled (4).
local function store_dependent(key, it, waiting, reason)
  local id, queue = it.id, it.queue
  if reason then
    store(key, it, 'canceled')
    redis.call('HSET', key, 'ended_at', ARGV[2], 'exc_info', reason)
    finalize(id, queue, 'canceled', it.enq, cancel_expires,
      string.format('%d', math.ceil(tonumber(cancel_expires) * 1000)))
    return 4
  end
  store(key, it, 'deferred')
  if it.front then redis.call('HSET', key, 'front', '1') end
  redis.call('ZADD', idx(queue, 'deferred'), it.enq, id)
  for _, dep in ipairs(waiting) do
    redis.call('SADD', P .. 'dependents:' .. dep, id)
    redis.call('PERSIST', P .. 'dependents:' .. dep)  -- it may be a settled record's set
  end
  return 3
end

-- Write one item (decided by pass 1 when `it.take` is set, else here). Returns 1 or 0 (or
-- 3, 4 for an item with dependencies: deferred, canceled).
local function write(it)
  local id, queue = it.id, it.queue
  local key = jkey(id)
  local old = it.new and NONE or redis.call('HMGET', key, 'status', 'queue')
  if it.take == nil then
    if (it.dedup and PENDING[old[1]]) or (it.once and once_taken(it.once)) then return 0 end
  elseif not it.take then
    return 0
  end
  if it.once then redis.call('ZADD', P .. 'once', ARGV[3], it.once) end
  if old[1] then
    unindex(id, old[2], old[1])
    drop_pending(id)
    redis.call('DEL', key, P .. 'done:' .. id)
  end
  local delayed = it.run_at ~= ''
  if it.deps then
    local waiting, reason = dependencies(it)
    if reason or #waiting > 0 then
      seen[queue] = true
      return store_dependent(key, it, waiting, reason)
    end
  end
  store(key, it, delayed and 'scheduled' or 'queued')
  if delayed then
    redis.call('ZADD', idx(queue, 'scheduled'), it.enq, id)
    redis.call('ZADD', P .. 'scheduled', it.run_at, id)
  else
    collect(it)
  end
  seen[queue] = true
  return 1
end

-- `cmd key v1 v2 ...` in slices (Lua's unpack has a limit), skipping replaced entries.
local function push_all(cmd, key, values, step)
  local chunk = {}
  for i = 1, #values, step do
    if values[i] then
      for j = i, i + step - 1 do chunk[#chunk + 1] = values[j] end
    end
    if #chunk >= 1000 or (i + step > #values and #chunk > 0) then
      redis.call(cmd, key, unpack(chunk))
      chunk = {}
    end
  end
end

local out = {}
if max_queued or cancel_expires ~= '' then
  local items, i = {}, FIRST_ITEM
  while i <= #ARGV do items[#items + 1], i = parse(i) end
  if cancel_expires ~= '' then
    local unknown = unknown_dependency(items)
    if unknown then return {-2, unknown} end
  end
  if max_queued then
    local full = decide(items, out)
    if full then return {-1, full} end
    for k, it in ipairs(items) do
      local done = write(it)
      if done > 1 then out[k] = done end
    end
  else
    for k, it in ipairs(items) do out[k] = write(it) end
  end
else
  local i, it = FIRST_ITEM, nil
  while i <= #ARGV do
    it, i = parse(i)
    out[#out + 1] = write(it)
  end
end

for queue in pairs(seen) do redis.call('SADD', P .. 'queues', queue) end
for queue, z in pairs(scores) do
  push_all('LPUSH', qkey(queue), heads[queue], 1)
  push_all('RPUSH', qkey(queue), tails[queue], 1)
  push_all('ZADD', idx(queue, 'queued'), z, 2)
  -- Wake idle claimers: a token per job added, never more tokens than queued jobs.
  local w = P .. 'wake:' .. queue
  local room = redis.call('LLEN', qkey(queue)) - redis.call('LLEN', w)
  for _ = 1, math.min(#z / 2, room) do redis.call('RPUSH', w, '1') end
end
return out
