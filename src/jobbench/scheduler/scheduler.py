"""``jobbench schedule``: every tick, enqueue each due job type of every active site.

Ticks fall on wall-clock multiples of ``scheduler_tick_interval``. Any number of schedulers may
run at once, on one machine or several sharing the broker: a lease in the broker lets one of
them do the work in the normal case, and each slot of each job type carries an identity
``(site, job type, slot time)`` that the broker refuses twice, so even two schedulers ticking
at the same moment enqueue a slot once. A follower wakes when the leader's lease would expire,
so a dead leader is replaced within one tick.

A tick reads only the job types that are due (``next_execution`` is stored and indexed), so
its cost grows with the number of due job types, not with all of them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from jobbench.bench import Bench
from jobbench.brokers.factory import get_broker
from jobbench.context import site_context
from jobbench.errors import BrokerError, JobbenchError
from jobbench.scheduler.cron import slot_epoch
from jobbench.scheduler.status import inactive_reason

LEASE = "scheduler"
LAST_TICK_MARKER = "scheduler_last_tick"  # broker marker: epoch seconds of the last tick
JOB_TYPE = "Scheduled Job Type"


@dataclass
class TickReport:
    enqueued: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # previous run still pending
    skipped_sites: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Scheduler:
    def __init__(
        self,
        bench: Bench,
        owner: str | None = None,
        quiet: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bench = bench
        self.owner = owner or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.quiet = quiet
        self.clock = clock
        self._stop = False
        self._interval = 60.0

    @property
    def interval(self) -> float:
        """The tick interval from the config, read each time (edits apply without a restart).

        A config file that is malformed for a moment (a hand edit) keeps the last good value
        and is logged, instead of stopping the scheduler; each site's own tick reports it."""
        try:
            self._interval = float(self.bench.common_config().get("scheduler_tick_interval") or 60)
        except JobbenchError as exc:
            self.log(f"config unreadable, keeping a {self._interval:g} s tick: {exc}")
        return self._interval

    def run(self) -> int:
        """Tick on every aligned multiple of the interval while holding the lease. Between
        ticks a follower checks the lease every quarter interval, and takes over (ticking at
        once) as soon as a dead leader's lease lapses."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.log(f"Scheduler {self.owner} started (tick every {self.interval:g} s)")
        broker = get_broker(self.bench, self.bench.common_config())
        leader = False
        next_tick = self._next_tick()
        next_check = 0.0
        try:
            while not self._stop:
                now = self.clock()
                if now >= next_tick or (not leader and now >= next_check):
                    on_tick = now >= next_tick
                    leader = self._lease(broker)
                    if leader:
                        self._tick_and_log()
                        self._mark_tick(broker)
                    next_tick = self._next_tick() if on_tick else next_tick
                    next_check = now + self.interval / 4
                time.sleep(max(0.0, min(0.2, next_tick - self.clock())))
        finally:
            with contextlib.suppress(BrokerError):
                broker.release_lease(LEASE, self.owner)
        self.log(f"Scheduler {self.owner} stopped")
        return 0

    def _lease(self, broker: Any) -> bool:
        """Take or renew the lease; an unreachable broker means "not leader" for now (logged),
        never a crash: the next check retries."""
        try:
            return bool(broker.acquire_lease(LEASE, self.owner, self.interval * 1.2))
        except BrokerError as exc:
            self.log(f"broker unavailable, will retry: {exc}")
            return False

    def _next_tick(self) -> float:
        interval = self.interval
        return (self.clock() // interval + 1) * interval

    def _tick_and_log(self) -> None:
        report = self.tick()
        if report.enqueued:
            self.log(f"enqueued {', '.join(report.enqueued)}")

    def _mark_tick(self, broker: Any) -> None:
        """Publish the tick time for the metrics (``jobbench_scheduler_last_tick...``); a
        broker error is logged, never fatal."""
        try:
            broker.set_marker(LAST_TICK_MARKER, time.time())
        except Exception as exc:  # noqa: BLE001 - metrics never stop the scheduler
            self.log(f"could not record the tick time: {exc}")

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self._stop = True

    def tick(self, now: float | None = None) -> TickReport:
        """One pass over every site; ``now`` (epoch seconds) lets tests simulate the clock."""
        now = self.clock() if now is None else now
        report = TickReport()
        for site in self.bench.list_sites():
            try:
                self._tick_site(site, now, report)
            except Exception as exc:  # noqa: BLE001 - one broken site never stops the others
                report.errors.append(f"{site}: {exc}")
                self.log(f"{site}: tick failed: {traceback.format_exc(limit=3)}")
        return report

    def _tick_site(self, site: str, now: float, report: TickReport) -> None:
        with site_context(site, self.bench.path) as local:
            reason = inactive_reason(local)
            if reason:
                report.skipped_sites[site] = reason
                return
            zone = local.time_zone()
            local_now = dt.datetime.fromtimestamp(now, ZoneInfo(zone)).replace(tzinfo=None)
            due = local.db.get_all(
                JOB_TYPE,
                filters={"stopped": 0, "next_execution": ("<=", local_now)},
                pluck="name",
                order_by="next_execution asc",
            )
            for name in due:
                self._run_due(local, name, local_now, zone, report)

    def _run_due(
        self, local: object, name: str, local_now: dt.datetime, zone: str, report: TickReport
    ) -> None:
        from jobbench.context import current
        from jobbench.documents import get_doc
        from jobbench.scheduler.run import enqueue_job_type

        db = current().db
        try:
            doc = get_doc(JOB_TYPE, name)
            slot = slot_epoch(doc.next_execution, zone)
            doc.last_execution = local_now
            doc.get_next_execution()  # a corrupt schedule fails here, before any enqueue
            outcome = enqueue_job_type(doc, slot=slot)
            if outcome == "duplicate":
                outcome = _slot_after_duplicate(doc, local_now, zone)
            if outcome == "pending":
                report.blocked.append(f"{current().site}:{name}")
                return
            _save_run(doc, local_now)
            if outcome == "enqueued":
                report.enqueued.append(f"{current().site}:{name}")
        except JobbenchError as exc:  # one bad job type never stops the others
            db.rollback()
            report.errors.append(f"{current().site}:{name}: {exc}")
            self.log(f"{current().site}: {name}: {exc}")

    def log(self, message: str) -> None:
        if not self.quiet:
            print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def _slot_after_duplicate(doc: Any, local_now: dt.datetime, zone: str) -> str:
    """The stored slot was enqueued already: by a scheduler ticking it right now, or by one
    that died between its enqueue and its save. In the second case the slot after it may be
    due as well; enqueue that one (once) instead of skipping it when saving ``local_now``."""
    from jobbench.scheduler.run import enqueue_job_type

    doc.last_execution = doc.next_execution
    following = doc.get_next_execution()
    doc.last_execution = local_now
    if following > local_now:
        return "duplicate"
    return enqueue_job_type(doc, slot=slot_epoch(following, zone))


def _save_run(doc: Any, local_now: dt.datetime) -> None:
    """Save ``last_execution`` and commit. Another scheduler may save the same job type for
    the same slot at this very moment; on SQLite that makes this transaction's read snapshot
    stale ("database is locked" at once). Then write the same values again, in a transaction
    whose first statement is the write, so it simply waits for the other one."""
    from jobbench.context import current
    from jobbench.errors import LockWaitTimeoutError

    db = current().db
    try:
        doc.save()  # sets next_execution from last_execution before it writes
        db.commit()
        return
    except LockWaitTimeoutError:
        db.rollback()
    values = {"last_execution": local_now, "next_execution": doc.next_execution}
    db.set_value(JOB_TYPE, doc.name, values, update_modified=False)
    db.commit()
