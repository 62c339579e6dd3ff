-- enqueue: store records as `queued` (pushed on their queues) or, delayed, as `scheduled`; one
-- job or a whole batch (enqueue_many), in order, in this one atomic step. All or nothing: the
-- first pass decides every item (duplicates, once-keys, max_queued) without writing, so a
-- refusal returns before anything changed; the second writes.
-- ARGV: prefix, now, once_expires_at, max_queued or '', then per item:
--   id, queue, flags (3 chars '0'|'1': at_front, deduplicate, has_once_key), once_key,
--   run_at ('' unless delayed), enqueued_at, n, field1, value1, ... (n pairs)
-- Returns {1|0, ...} per item (0: a pending duplicate, or the once-key is taken), or
-- {-1, queue} when that queue already holds max_queued jobs (nothing written).
local now = tonumber(ARGV[2])
local max_queued = ARGV[4] ~= '' and tonumber(ARGV[4]) or nil

local items = {}
local i = 5
while i <= #ARGV do
  local n = tonumber(ARGV[i + 6])
  local flags = ARGV[i + 2]
  table.insert(items, {
    id = ARGV[i], queue = ARGV[i + 1], front = string.sub(flags, 1, 1) == '1',
    dedup = string.sub(flags, 2, 2) == '1', once = string.sub(flags, 3, 3) == '1' and ARGV[i + 3],
    run_at = ARGV[i + 4], enq = ARGV[i + 5], first = i + 7, last = i + 6 + 2 * n,
  })
  i = i + 7 + 2 * n
end

-- pass 1: decide. `state` follows each id through the batch, `lengths` each queue.
local state, lengths, keys_taken = {}, {}, {}
local function status_of(id)
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
local out = {}
for k, it in ipairs(items) do
  local take = not (it.dedup and PENDING[status_of(it.id)[1]])
  local immediate = it.run_at == ''
  if take and max_queued and immediate and length(it.queue) >= max_queued then
    return {-1, it.queue}
  end
  if take and it.once then
    local until_ = redis.call('ZSCORE', P .. 'once', it.once)
    if keys_taken[it.once] or (until_ and tonumber(until_) > now) then take = false end
  end
  if take then
    if it.once then keys_taken[it.once] = true end
    if max_queued then
      local old = status_of(it.id)
      if old[1] == 'queued' then lengths[old[2]] = length(old[2]) - 1 end
      if immediate then lengths[it.queue] = length(it.queue) + 1 end
    end
    state[it.id] = {immediate and 'queued' or 'scheduled', it.queue}
  end
  it.take = take
  out[k] = take and 1 or 0
end

-- pass 2: write, item by item (a later item with an earlier one's id replaces it).
local seen, added = {}, {}
for _, it in ipairs(items) do
  if it.take then
    local id, queue = it.id, it.queue
    local key = jkey(id)
    if it.once then redis.call('ZADD', P .. 'once', ARGV[3], it.once) end
    local old = redis.call('HMGET', key, 'status', 'queue')
    if old[1] then
      unindex(id, old[2], old[1])
      redis.call('DEL', key, P .. 'done:' .. id)
    end
    redis.call('HSET', key, unpack(ARGV, it.first, it.last))
    if it.run_at ~= '' then
      if it.front then redis.call('HSET', key, 'front', '1') end
      redis.call('ZADD', idx(queue, 'scheduled'), it.enq, id)
      redis.call('ZADD', P .. 'scheduled', it.run_at, id)
    else
      redis.call(it.front and 'LPUSH' or 'RPUSH', qkey(queue), id)
      redis.call('ZADD', idx(queue, 'queued'), it.enq, id)
      added[queue] = (added[queue] or 0) + 1
    end
    seen[queue] = true
  end
end
for queue in pairs(seen) do redis.call('SADD', P .. 'queues', queue) end
-- Wake idle claimers: a token per job added, never more tokens than queued jobs.
for queue, n in pairs(added) do
  local w = P .. 'wake:' .. queue
  local room = redis.call('LLEN', qkey(queue)) - redis.call('LLEN', w)
  for _ = 1, math.min(n, room) do redis.call('RPUSH', w, '1') end
end
return out
