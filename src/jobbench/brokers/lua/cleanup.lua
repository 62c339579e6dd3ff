-- cleanup: delete final records whose retention expired by `now` (at most `batch` per call),
-- with their index entries; also the entries of hashes Redis already expired.
-- ARGV: prefix, now, batch.  Returns {examined, deleted}.
local members = redis.call('ZRANGEBYSCORE', P .. 'expiring', '-inf', ARGV[2], 'LIMIT', 0,
  ARGV[3])
local n = 0
for _, m in ipairs(members) do
  local status, queue, id = parse_member(m)
  if drop(id, queue, status) then n = n + 1 end
end
return {#members, n}
