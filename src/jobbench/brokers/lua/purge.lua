-- purge: delete every job with one of the statuses (never `started`), optionally only in one
-- queue and/or site. A record Redis already expired is matched by its id's site prefix.
-- ARGV: prefix, queue or '', site or '', status1, status2, ...
-- Returns how many records were deleted.
local site = ARGV[3]
local queues = ARGV[2] ~= '' and {ARGV[2]} or redis.call('SMEMBERS', P .. 'queues')
local n = 0
for _, queue in ipairs(queues) do
  for i = 4, #ARGV do
    local status = ARGV[i]
    for _, id in ipairs(redis.call('ZRANGE', idx(queue, status), 0, -1)) do
      local h = redis.call('HMGET', jkey(id), 'site', 'queue', 'status')
      if h[3] and not (h[2] == queue and h[3] == status) then
        unindex(id, queue, status)  -- a stale entry: the id now belongs to a newer record
      elseif site == '' or h[1] == site
          or (not h[3] and string.sub(id, 1, #site + 2) == site .. '::') then
        drop(id, queue, status)
        n = n + 1
      end
    end
  end
end
return n
