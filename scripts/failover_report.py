"""Rerun the Redis failover scenario and write its figures into docs/reliability.md.

    python3 scripts/failover_report.py            # long form: 2000 jobs, 3 failovers, both modes
    python3 scripts/failover_report.py --reduced  # CI form: 300 jobs, 1 failover, WAIT only

Runs ``tests/chaos/test_redis_failover.py`` (a master, a replica and three sentinels the test
starts; the master SIGKILLed after a master-replica partition while a producer enqueues and
two workers drain), with ``redis_queue_wait_replicas`` 1 and 0, and replaces the page's
"Redis failover" section (between its two markers) with the figures of this one run.
scripts/chaos_report.py keeps that section (or renders it anew from its own run). Exits with
pytest's exit code: a failing invariant never produces a page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
BEGIN = "<!-- redis-failover: written by scripts/failover_report.py -->"
END = "<!-- /redis-failover -->"


def section(figures: list[dict[str, object]], how: str) -> list[str]:
    """The section's lines (markers included) for the failover figures among ``figures``."""
    rows = [f for f in figures if f.get("scenario") == "redis_failover"]
    out = [
        BEGIN,
        "## Redis failover",
        "",
        "A master, one replica and three sentinels (quorum 2, down-after 500 ms) the test",
        "starts; the bench reaches Redis only through the sentinels. While a producer",
        "enqueues and 2 workers drain, the replica is cut off from the master (its link",
        "killed, and it cannot log in again: a partition) and the master is SIGKILLed 0.3 s",
        "later; the sentinels promote the replica and the killed node rejoins as a replica.",
        "Without the partition nothing is lost on loopback (what the master wrote to the",
        "replica's socket is still delivered), so the partition stands for a real network.",
        "Lost: jobs whose enqueue returned and that the new master does not know; ran twice:",
        "a claim or finish lost with the master, so the job was run again. Failed enqueues",
        "(BrokerUnavailable, ReplicationTimeout) are not retried under the same id.",
        f"This run: {how}.",
        "",
        "| `redis_queue_wait_replicas` | jobs | failovers | failed enqueues | finished "
        "| failed: worker died | lost | ran twice | left pending | longest promotion (s) "
        "| run (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in sorted(rows, key=lambda f: -int(str(f["wait_replicas"]))):
        out.append(
            f"| {f['wait_replicas']} | {f['jobs']} | {f['failovers']} | {f['enqueue_failures']} "
            f"| {f['finished']} | {f['failed_worker_died']} | {f['lost']} | {f['duplicates']} "
            f"| {f['not_final']} | {f['max_promotion_s']} | {f['seconds']} |"
        )
    out += [
        "",
        "With WAIT the test asserts none lost, none run twice, none left pending; without it",
        "it only measures. A job running when its worker could not heartbeat through the",
        'switch may end failed "worker died" (a reason, not a loss).',
        END,
    ]
    return out


def splice(page: str, lines: list[str]) -> str:
    """``page`` with its failover section replaced by ``lines`` (added before "## Also
    covered" when the page has none yet)."""
    block = "\n".join(lines)
    if BEGIN in page and END in page:
        head, rest = page.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    anchor = "## Also covered"
    if anchor in page:
        head, rest = page.split(anchor, 1)
        return head + block + "\n\n" + anchor + rest
    return page.rstrip("\n") + "\n\n" + block + "\n"


def kept_section(page: str) -> list[str]:
    """The failover section of an existing page, for scripts/chaos_report.py to keep."""
    if BEGIN in page and END in page:
        return (BEGIN + page.split(BEGIN, 1)[1].split(END, 1)[0] + END).splitlines()
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="run the CI form instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.jsonl"
        cmd = [sys.executable, "-m", "pytest", "tests/chaos/test_redis_failover.py", "-q",
               "-p", "no:cacheprovider", *([] if args.reduced else ["--chaos-long"])]  # fmt: skip
        done = subprocess.run(
            cmd, cwd=ROOT, env={**os.environ, "CHAOS_REPORT": str(out)}, capture_output=True,
            text=True, check=False,
        )  # fmt: skip
        figures = (
            [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        )
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode != 0 or not figures:
        print(f"failover scenario failed ({summary}); docs/reliability.md left unchanged")
        return done.returncode or 1
    form = "CI form" if args.reduced else "long form (`--chaos-long`)"
    how = (
        f"{dt.date.today().isoformat()}, {form}, `python3 scripts/failover_report.py`; "
        f"pytest said `{summary}`"
    )
    DOC.write_text(splice(DOC.read_text(), section(figures, how)))
    print(f"wrote the Redis failover section of {DOC.relative_to(ROOT)} ({summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
