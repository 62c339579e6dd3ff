-- finish: a job `started` by the worker becomes `finished`, kept until expires_at.
-- ARGV: prefix, id, worker, now, has_result '1'|'0', result, expires_at, expire_ms
-- Returns 1 when the job changed, else 0.
return finish_job(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
