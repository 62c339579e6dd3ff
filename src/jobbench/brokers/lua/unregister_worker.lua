-- unregister_worker: forget a worker. ARGV: prefix, name
redis.call('DEL', P .. 'worker:' .. ARGV[2])
redis.call('ZREM', P .. 'workers', ARGV[2])
return 1
