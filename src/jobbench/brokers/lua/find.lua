-- find: records matching every filter given, newest enqueued first, expired ones skipped.
-- Merges the (queue, status) indexes in descending enqueued_at order, reading them in chunks.
-- ARGV: prefix, now, queue or '', status or '', site or '', limit (<0: all), offset
-- Returns a list of HGETALL flat lists.
local now, site = tonumber(ARGV[2]), ARGV[5]
local limit, skip = tonumber(ARGV[6]), tonumber(ARGV[7])
if limit < 0 then limit = math.huge end
local CHUNK = 100
local queues = ARGV[3] ~= '' and {ARGV[3]} or redis.call('SMEMBERS', P .. 'queues')
local statuses = ARGV[4] ~= '' and {ARGV[4]} or STATUSES
local streams = {}
for _, q in ipairs(queues) do
  for _, s in ipairs(statuses) do
    table.insert(streams, {key = idx(q, s), queue = q, status = s, from = 0, buf = {}, i = 1})
  end
end

-- The stream's next id and score, refilling its buffer from Redis when it runs out.
local function head(st)
  if st.i > #st.buf then
    if st.done then return nil end
    st.buf = redis.call('ZREVRANGE', st.key, st.from, st.from + CHUNK - 1, 'WITHSCORES')
    st.from, st.i = st.from + CHUNK, 1
    st.done = #st.buf < 2 * CHUNK
    if #st.buf == 0 then return nil end
  end
  return st.buf[st.i], tonumber(st.buf[st.i + 1])
end

local function wanted(id, st)
  local h = redis.call('HMGET', jkey(id), 'queue', 'status', 'site', 'expires_at')
  return h[1] == st.queue and h[2] == st.status and (site == '' or h[3] == site)
    and not (h[4] and tonumber(h[4]) <= now)
end

local out = {}
while #out < limit do
  local best, best_score, best_id = nil, nil, nil
  for _, st in ipairs(streams) do
    local id, score = head(st)
    if id and (not best or score > best_score) then best, best_score, best_id = st, score, id end
  end
  if not best then break end
  best.i = best.i + 2
  if wanted(best_id, best) then
    if skip > 0 then
      skip = skip - 1
    else
      table.insert(out, redis.call('HGETALL', jkey(best_id)))
    end
  end
end
return out
