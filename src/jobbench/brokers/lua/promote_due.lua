-- promote_due: every `scheduled` job whose retry_at has passed goes to its queue (the tail; the
-- head for a delayed at_front job), in due order.
-- ARGV: prefix, now.  Returns how many moved.
return promote_due(ARGV[2], -1)
