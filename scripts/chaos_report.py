"""Rerun the chaos suite and write its measured figures into docs/reliability.md.

    python3 scripts/chaos_report.py            # the long form (pytest tests/chaos --chaos-long)
    python3 scripts/chaos_report.py --reduced  # the CI form, when the long one does not fit

The tests append one JSON line per scenario and broker to $CHAOS_REPORT; this script runs
them, reads those lines and renders the page. It exits with pytest's exit code, so a failing
invariant never produces a page that claims success.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"


def run(reduced: bool) -> tuple[int, list[dict[str, object]], float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.jsonl"
        cmd = [sys.executable, "-m", "pytest", "tests/chaos", "-q", "-p", "no:cacheprovider"]
        if not reduced:
            cmd.append("--chaos-long")
        env = {**os.environ, "CHAOS_REPORT": str(out)}
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        lines = out.read_text().splitlines() if out.exists() else []
        tail = (done.stdout.strip().splitlines() or [""])[-1]
        return done.returncode, [json.loads(line) for line in lines], elapsed, tail


def render(figures: list[dict[str, object]], reduced: bool, elapsed: float, summary: str) -> str:
    kills = [f for f in figures if f["scenario"] == "worker_kills"]
    sched = [f for f in figures if f["scenario"] == "scheduler"]
    restart = [f for f in figures if f["scenario"] == "broker_restart"]
    dbf = [f for f in figures if f["scenario"] == "db_faults"]
    form = "CI (reduced) form" if reduced else "long form (`--chaos-long`)"
    out = [
        "# Reliability",
        "",
        "Measured by `scripts/chaos_report.py`, which reruns `tests/chaos` and writes this page.",
        f"Last run: {dt.date.today().isoformat()}, {form}, {platform.machine()} with "
        f"{os.cpu_count()} CPUs, {elapsed:.0f} s; pytest said: `{summary}`.",
        "",
    ]
    if reduced:
        out += [
            "**This run is the reduced (CI) form**: the long form (10,000 jobs per broker,",
            "2,000 scheduler slots, more fuzz examples) did not fit the time available when",
            "the page was written. Rerun `python3 scripts/chaos_report.py` for long-form figures.",
            "",
        ]
    out += [
        "## Worker kills",
        "",
        "Short jobs across 4 workers (heartbeat 0.5 s, TTL 2 s); every 0.5-1 s a killer",
        "SIGKILLs a random worker's supervisor (its executor dies with it; the test restarts",
        "the worker) or only its executor (the supervisor settles the job and respawns it).",
        "Lost counts jobs with no record or still queued/started after settling; duplicates",
        "are jobs whose effect was recorded more than once. Detection is the longest time from",
        'a killed job\'s start to its settlement as failed with "worker died".',
        "Layouts: `sync` one job at a time; `sync-threads-4` is `--concurrency 4`; "
        "`async-loop` async def jobs on the executor's shared event loop (`--async-mode loop`, "
        "ten at once): a killed executor takes up to four, or ten, jobs with it.",
        "",
        "| broker | layout | jobs | finished | failed: worker died | supervisor kills "
        "| executor kills | restarts | lost | duplicates | max detection (s) | run (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in kills:
        out.append(
            f"| {f['broker']} | {f.get('layout', f.get('concurrency', 1))} | {f['jobs']} | "
            f"{f['finished']} | "
            f"{f['failed_worker_died']} | "
            f"{int(f['supervisor'])} | {int(f['executor'])} | {int(f['restarts'])} | "
            f"{f['lost']} | {f['duplicates']} | {f['max_detection_s']} | {f['seconds']} |"
        )
    out += [
        "",
        "## Scheduler chaos",
        "",
        "Three scheduler processes tick the same simulated slots (1 s apart); every 2-5 slots",
        "one is SIGKILLed, between ticks or in the middle of one, and replaced. A real worker",
        "runs each slot (with a Scheduled Job Log); its executor is killed now and then.",
        "Every slot was enqueued exactly once and no log was left at Start (else the run fails).",
        "",
        "| broker | slots | scheduler kills | executor kills | runs failed (log Failed) |",
        "|---|---:|---:|---:|---:|",
    ]
    for f in sched:
        out.append(
            f"| {f['broker']} | {f['slots']} | {f['scheduler_kills']} | "
            f"{f['executor_kills']} | {f['failed_runs']} |"
        )
    out += [
        "",
        "## Broker restart",
        "",
        "A test-owned redis-server (AOF on, `appendfsync always`) is stopped with SIGTERM and",
        "started again on the same port and directory 2 s later, while a producer enqueues",
        "and 2 workers run. Enqueues that raised BrokerUnavailable are counted and not retried",
        "under the same id; every job whose enqueue returned is accounted for. A job that was",
        'running when Redis went down may end failed "worker died". The worker supervisors',
        "never die (same pids throughout); executor respawns are counted. An orphaned claim",
        "is a job left `started` under a live worker and never run; the test fails on any.",
        "",
        "| broker | jobs | restarts | failed enqueues | finished | failed: worker died "
        "| lost | orphaned claims | duplicates | executor respawns | longest outage (s) "
        "| run (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in restart:
        out.append(
            f"| {f['broker']} | {f['jobs']} | {f['restarts']} | {f['enqueue_failures']} | "
            f"{f['finished']} | {f['failed_worker_died']} | {f['lost']} | "
            f"{f.get('orphaned_claims', 0)} | {f['duplicates']} | "
            f"{f['executor_respawns']} | {f['max_outage_s']} | {f['seconds']} |"
        )
    out += [
        "",
        "## Database faults",
        "",
        "Deadlock: two jobs on a site whose database is on the server lock two rows in",
        "opposite order (coordinated by files); the server picks a victim, which is rolled",
        "back and retried in place. Both finish; the victim's rolled-back attempt leaves no",
        "row behind; no Error Log is written for it. A third job writes and then fails: its",
        "write is rolled back and it has exactly one Error Log. Unreachable database: while a",
        "job holds a transaction on a PostgreSQL site, every connection to that database is",
        "terminated (`pg_terminate_backend`); the job fails with DatabaseUnavailableError, its",
        "write is gone, and the same worker runs the next jobs on that site and another.",
        "",
        "| database | jobs | job calls (deadlock pair) | deadlock pair finished "
        "| connections killed | Error Logs | run (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f in dbf:
        out.append(
            f"| {f['database']} | {f['jobs']} | {f.get('deadlock_calls', '-')} | "
            f"{f.get('deadlock_finished', '-')} | {f.get('connections_killed', '-')} | "
            f"{f['error_logs']} | {f['seconds']} |"
        )
    out += _host_cut([f for f in figures if f["scenario"] == "host_cut"])
    out += outbox_section([f for f in figures if f["scenario"] == "outbox"])
    out += [
        "",
        "## Also covered (pass/fail, no figures)",
        "",
        "- Timeouts under load: jobs that swallow every exception, block in C with signals",
        "  masked, or fork a child, among normal jobs: each ends failed with",
        "  JobTimeoutException within timeout + 5 s, forked children are gone, workers go on.",
        "- Fuzzing (hypothesis): common_site_config.json contents, enqueue arguments, cron",
        "  strings, CLI arguments; forged or corrupt broker records (unsigned or wrongly signed",
        "  pickles, garbage JSON, unknown serializer or method, corrupt SQLite columns).",
        "- SQLite broker file locked by another process: enqueue waits for the lock, or raises",
        "  BrokerUnavailable with a short busy timeout; no partial write, integrity check ok.",
        "",
        "## Found and fixed by this suite",
        "",
        "- Scheduler: a scheduler killed between enqueueing a slot and saving the job type made",
        '  the next tick skip the following slot (the stale slot came back "duplicate" and',
        "  last_execution jumped to now). Fixed in `scheduler/scheduler.py`",
        "  (`_slot_after_duplicate`).",
        "- Worker: an executor that died while the broker was unreachable took its",
        "  supervisor down with it (settling the lost job raised BrokerUnavailable out of the",
        "  main loop). The settlement is now retried before the next executor is spawned",
        "  (`worker/worker.py`, `_settle_pending`).",
        "- Config: a common_site_config.json that is not UTF-8 raised UnicodeDecodeError (a",
        "  traceback from every command) instead of ConfigError. Fixed in `config.py`.",
        "- Redis broker: after a Redis restart the server has no scripts; `finish_and_claim`",
        "  pipelines EVALSHA finish + EVALSHA claim without a transaction, so when another",
        "  process had already reloaded `claim`, finish failed NOSCRIPT, claim succeeded (a",
        "  job was claimed), and the fallback claimed again: the first job stayed `started`",
        "  under a live worker, never run. Fixed in `brokers/redis.py`: each reply is handled",
        "  on its own and only what did not run is redone",
        "  (test: `tests/integration/test_redis_scripts_lost.py`).",
        "- Tracking: a worker cut off from the broker, whose job another host had settled",
        "  failed, ran the job to its end behind the cut and set its Background Task",
        "  Completed over the Failed one. A job's own task updates are now conditional on the",
        "  task's status (`jobs/tracking.py`; test: `tests/chaos/test_host_cut.py`).",
        "",
        "## Not covered yet",
        "",
        "- A database server restarted (the suite never restarts the machine's PostgreSQL or",
        "  MariaDB; terminating a site database's connections stands in for it), and MariaDB",
        "  connections killed mid-job.",
        "- A deadlock victim that keeps losing past the 5 in-place retries (1+2+3+4+5 s of",
        "  pauses; only the clean failure of a non-retryable error is exercised).",
        "",
    ]
    return "\n".join(out)


def _host_cut(cuts: list[dict[str, object]]) -> list[str]:
    out = [
        "",
        "## A host cut off",
        "",
        "Two worker hosts in network namespaces (veth pairs to a bridge) share a Redis and a",
        "PostgreSQL site database started on the bridge's address. In each round host 0's link",
        "is set down while it runs a job (packets dropped, not refused): host 1 must settle the",
        'job failed "worker died" once host 0\'s heartbeat expires; the link comes back, host 0',
        "runs the job to its end and reports it, and that late outcome must change nothing in",
        "the broker or in the job's Background Task (else the run fails).",
        "",
        "| broker | site database | cuts | settled by the other host | outcomes overwritten "
        "after the link came back | heartbeat TTL (s) | max detection (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for f in cuts:
        out.append(
            f"| {f['broker']} | {f['site_db']} | {f['cuts']} | {f['settled_by_other_host']} | "
            f"{f['overwritten_after_mend']} | {f['ttl']} | {f['max_detection']} |"
        )
    return out


def outbox_section(runs: list[dict[str, object]]) -> list[str]:
    """The outbox scenario (tests/chaos/test_outbox_broker_down.py) and how the outbox works."""
    out = [
        "",
        "## The outbox: broker down at commit",
        "",
        "`enqueue(..., enqueue_after_commit=True)` (and `durable=True`, or every enqueue with",
        "the `durable_enqueue` config key) writes the signed job record into the site",
        "database's `__job_outbox` table (created by `migrate`) in the caller's transaction: a",
        "rollback, also to a savepoint, takes it back with the caller's data. After the commit",
        "the committing process relays it to the broker; with the broker down the commit still",
        "succeeds (one warning per outage) and the job waits. Every worker executor and every",
        "scheduler checks its sites' outboxes once a second (an indexed `LIMIT 1` read per",
        "site; a site context only for a site with rows) and relays; `jobbench outbox flush`",
        "does it on demand. `doctor`, `jobbench outbox list`, the Inspector (`outbox()`) and",
        "`metrics` (`jobbench_outbox_undelivered`, `jobbench_outbox_oldest_age_seconds`) show",
        "what waits, for how long, and the last delivery error.",
        "",
        "- **Order.** One relay per site at a time holds the broker lease `outbox:<site>`",
        "  (30 s, renewed per batch of 100); rows go out in insertion order, and a row that",
        "  fails stops the pass (its error kept on the row), so a later job never overtakes an",
        "  earlier one. `SELECT ... FOR UPDATE SKIP LOCKED` would let relays share a site but",
        "  not keep the order, and SQLite has no row locks; the lease works on every database.",
        "  Jobs of two transactions open at once are in the order of their INSERTs.",
        "- **Exactly once, by job id.** The id is decided at enqueue and stored with the",
        "  record. A relay deletes rows once the broker has answered for them; before it",
        "  delivers a row it asks the broker for that very record (same id, enqueue time and",
        "  signature: a relay that died between the broker's answer and the DELETE, or an",
        "  answer lost on the way) and then only deletes the row, so a redelivery is a no-op.",
        "  The one gap: a row that outlives its job's record (delivered, run and expired after",
        "  `rq_results_ttl`, or deleted, before any relay returned to the row) is delivered",
        "  again. A broker once-key per job would close it, at the price of a key per",
        "  after-commit job kept seven days.",
        "",
        "Cost (`python benchmarks/outbox.py`, one run on the 2-core development machine,",
        "2026-12-03, SQLite site): a commit of one document took 0.34 ms alone, 0.74 ms with an",
        "`enqueue` and 1.79 ms with an after-commit job on the SQLite broker (Redis: 0.36, 1.39,",
        "2.59 ms): the row, the lease, the broker's look-up of the record, the DELETE. A relay's",
        "idle check of one site took 0.12 ms of CPU on SQLite, 0.25 on PostgreSQL, 0.21 on",
        "MariaDB, once a second per worker and scheduler process.",
        "",
    ]
    if not runs:
        return out + ["(No figures from this run.)"]
    out += [
        "The test stops a test-owned redis-server, commits a document with an after-commit",
        "job, starts the server again after the outage and checks the job's effect (a line in",
        "a file) appears once. The job starts when the worker's executor, which backs off",
        "while the broker is unreachable (0.5 s doubling to 10 s), claims again; the relay",
        "itself delivers within about a second of the broker's return.",
        "",
        "| site database | broker down (s) | commit took (s) "
        "| job ran after the broker was back (s) | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    for f in runs:
        out.append(
            f"| {f['database']} | {f['down_s']} | {f['commit_s']} | {f['ran_after_s']} | "
            f"{f['runs']} |"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="run the CI form instead")
    args = parser.parse_args()
    code, figures, elapsed, summary = run(args.reduced)
    if code != 0:
        print(f"chaos suite failed ({summary}); docs/reliability.md left unchanged")
        return code
    page = render(figures, args.reduced, elapsed, summary)
    # The Redis failover section (scripts/failover_report.py): from this run, else kept.
    from failover_report import kept_section, section, splice

    form = "reduced (CI) form" if args.reduced else "long form"
    fresh = any(f.get("scenario") == "redis_failover" for f in figures)
    kept = section(figures, f"the chaos suite's {form} above") if fresh else []
    kept = kept or (kept_section(DOC.read_text()) if DOC.exists() else [])
    DOC.write_text(splice(page, kept) if kept else page)
    print(f"wrote {DOC.relative_to(ROOT)} ({summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
