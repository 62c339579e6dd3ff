-- fail: a `started` job (by worker; '' = any) is retried as `scheduled` or becomes `failed`.
-- ARGV: prefix, id, worker, exc_info, now, retry_at or '', expires_at, expire_ms, failed_limit
-- Returns 1 when the job changed, else 0.
return fail_job(ARGV[2], ARGV[3], ARGV[4], {ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]})
