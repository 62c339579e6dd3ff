-- wait_check: the record of a job someone waits on; while it is pending, the waiter's flag
-- (see notify in common.lua) is set for flag_ms, in the same step, so an end that comes
-- after this check always leaves a token for the waiter's BLMOVE.
-- ARGV: prefix, id, flag_ms.  Returns HGETALL's flat list (empty: no such job).
local id = ARGV[2]
local flat = redis.call('HGETALL', jkey(id))
local status = redis.call('HGET', jkey(id), 'status')
if PENDING[status] then
  redis.call('SET', P .. 'waiting:' .. id, '1', 'PX', ARGV[3])
end
return flat
