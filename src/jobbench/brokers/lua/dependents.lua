-- dependents: ids of the `deferred` jobs still waiting for job `id` (stale entries skipped).
-- ARGV: prefix, id
local id, out = ARGV[2], {}
for _, d in ipairs(redis.call('SMEMBERS', P .. 'dependents:' .. id)) do
  local h = redis.call('HMGET', jkey(d), 'status', 'depends_on')
  if h[1] == 'deferred' and contains(decode_ids(h[2]), id) then out[#out + 1] = d end
end
return out
