"""Text of what ``doctor`` and ``scheduler status`` say about liveness, queues and last runs.

Both take the Inspector's dictionaries (``SchedulerLiveness.to_dict()``, the doctor report),
so the JSON forms and the text forms come from one reading.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from jobbench.cli.main import echo
from jobbench.cli.output import print_table

QUEUE_COLUMNS = ("queued", "started", "scheduled", "finished", "failed")


def when(epoch: float | None, now: float | None = None) -> str:
    """``2026-12-03 11:46:23 UTC (5 s ago)`` / ``(in 55 s)``; ``never`` for None."""
    if epoch is None:
        return "never"
    now = time.time() if now is None else now
    stamp = f"{dt.datetime.fromtimestamp(epoch, tz=dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
    delta = epoch - now
    return f"{stamp} ({duration(-delta)} ago)" if delta <= 0 else f"{stamp} (in {duration(delta)})"


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 4 min``, ``3 d 2 h``."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def liveness_line(liveness: dict[str, Any]) -> str:
    """One line: running or not, the leader, the last tick and when the next is due."""
    processes = liveness["processes"]
    if processes:
        leader = liveness["leader"] or "none yet (taking the lease)"
        head = f"Scheduler: running ({len(processes)} process(es), leader {leader})"
    else:
        head = "Scheduler: none running"
    tail = f"last tick {when(liveness['last_tick'])}"
    if liveness["next_tick_due"] is not None:
        tail += f", next due {when(liveness['next_tick_due'])}"
    return f"{head}; {tail}; tick every {liveness['tick_interval']:g} s"


def print_liveness(liveness: dict[str, Any]) -> None:
    echo(liveness_line(liveness))
    if len(liveness["processes"]) < 1:
        return
    print_table(
        ["scheduler", "host", "pid", "state", "heartbeat", "last tick"],
        (
            [
                p["name"],
                p["host"],
                p["pid"],
                p["state"],
                f"{p['heartbeat_age']:.0f} s ago" + (" (stale)" if p["stale"] else ""),
                when(p["last_tick"]),
            ]
            for p in liveness["processes"]
        ),
    )


def print_queues(report: dict[str, Any]) -> None:
    ages = report["oldest_queued"]
    print_table(
        ["queue", *QUEUE_COLUMNS, "oldest queued"],
        (
            [name, *(counts.get(c, 0) for c in QUEUE_COLUMNS), _age(ages.get(name))]
            for name, counts in report["queues"].items()
        ),
        title="Queues",
    )


def _age(seconds: float | None) -> str:
    return "" if seconds is None else duration(seconds)


def print_last_runs(site: dict[str, Any]) -> None:
    name = site["site"]
    due = f"; {site['due_job_types']} due now" if site["due_job_types"] else ""
    echo(f"{name}: next scheduled run {site['next_due'] or '-'}{due}")
    if not site["last_runs"]:
        echo(f"Last scheduled runs of {name}: none")
        return
    print_table(
        ["job type", "last run", "next run"],
        (
            [r["job_type"], r["last_execution"], r["next_execution"] or "-"]
            for r in site["last_runs"]
        ),
        title=f"Last scheduled runs of {name}",
    )


def print_warnings(lines: list[str]) -> None:
    for line in lines:
        echo(f"Warning: {line}")
