-- cleanup: delete final records whose retention expired by `now` (at most `batch` per call),
-- with their index entries, also those of hashes Redis already expired; forget once-keys
-- expired by `now`.
-- ARGV: prefix, now, batch.  Returns {examined, deleted}.
redis.call('ZREMRANGEBYSCORE', P .. 'once', '-inf', ARGV[2])
local members = redis.call('ZRANGEBYSCORE', P .. 'expiring', '-inf', ARGV[2], 'LIMIT', 0,
  ARGV[3])
local n = 0
for _, m in ipairs(members) do
  local status, queue, id = parse_member(m)
  if drop(id, queue, status) then n = n + 1 end
end
return {#members, n}
