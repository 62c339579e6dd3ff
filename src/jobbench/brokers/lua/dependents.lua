-- dependents: ids of the jobs enqueued depending on job `id`: only the `deferred` ones still
-- waiting for it, or (ARGV[3] = '1') every one still stored (settled ones too).
-- ARGV: prefix, id, all '0'|'1'
local id, all, out = ARGV[2], ARGV[3] == '1', {}
for _, d in ipairs(redis.call('SMEMBERS', P .. 'dependents:' .. id)) do
  local h = redis.call('HMGET', jkey(d), 'status', 'depends_on')
  if (all and h[1]) or (h[1] == 'deferred' and contains(decode_ids(h[2]), id)) then
    out[#out + 1] = d
  end
end
return out
