-- set_progress: record a job's progress and stage (absent = cleared); no-op for no such job.
-- ARGV: prefix, id, has_progress '1'|'0', progress, has_stage '1'|'0', stage
local key = jkey(ARGV[2])
if redis.call('EXISTS', key) == 0 then return 0 end
if ARGV[3] == '1' then
  redis.call('HSET', key, 'progress', ARGV[4])
else
  redis.call('HDEL', key, 'progress')
end
if ARGV[5] == '1' then
  redis.call('HSET', key, 'stage', ARGV[6])
else
  redis.call('HDEL', key, 'stage')
end
return 1
