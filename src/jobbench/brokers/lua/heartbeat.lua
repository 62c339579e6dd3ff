-- heartbeat: publish a worker's info (key with TTL) and its expiry (workers zset).
-- ARGV: prefix, name, info_json, expires_at, ttl_ms
redis.call('SET', P .. 'worker:' .. ARGV[2], ARGV[3], 'PX', ARGV[5])
redis.call('ZADD', P .. 'workers', ARGV[4], ARGV[2])
return 1
