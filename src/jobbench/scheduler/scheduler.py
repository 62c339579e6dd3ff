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
import logging
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

import sqlalchemy as sa

from jobbench import logs
from jobbench.bench import Bench
from jobbench.brokers.base import WorkerInfo
from jobbench.brokers.factory import get_broker
from jobbench.brokers.liveness import liveness
from jobbench.context import SiteLocal, site_context
from jobbench.errors import BrokerError, JobbenchError
from jobbench.jobs.outbox import OutboxRelay
from jobbench.jobs.trust import secret_of
from jobbench.scheduler.cron import DEFAULT_INTERVAL, schedule_basis, to_local
from jobbench.scheduler.status import inactive_reason

LOG = logs.get_logger("scheduler")
WARN = logging.WARNING
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
        reaper: tuple[Callable[[], Any], float] | None = None,
    ) -> None:
        secret_of(bench.common_config())  # every run it enqueues is signed with it
        self.bench = bench
        self.owner = owner or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.quiet = quiet
        self.clock = clock
        # Settling the jobs of dead workers, handed in by the process that runs us (the
        # worker layer sits above this one): (what to call, every how many seconds).
        self._reaper = reaper
        self._next_reap = 0.0
        self._stop = False
        self._interval = 60.0
        # Registered like a worker (same registry, same heartbeat settings), so doctor and the
        # dashboard see every scheduler, on any host, and which one leads.
        conf = bench.common_config()
        self.heartbeat_interval, self.heartbeat_ttl = liveness(conf)
        host = socket.gethostname()
        self.info = WorkerInfo(self.owner, os.getpid(), host, [], "standby", kind="scheduler")
        self._next_beat = 0.0
        self._outbox = OutboxRelay(bench, self.log)  # after-commit jobs the broker missed

    @property
    def interval(self) -> float:
        """The tick interval from the config, read each time (edits apply without a restart).

        A config file that is malformed for a moment (a hand edit) keeps the last good value
        and is logged, instead of stopping the scheduler; each site's own tick reports it."""
        try:
            self._interval = float(self.bench.common_config().get("scheduler_tick_interval") or 60)
        except JobbenchError as exc:
            self.log(f"config unreadable, keeping a {self._interval:g} s tick: {exc}", WARN)
        return self._interval

    def run(self) -> int:
        """Tick on every aligned multiple of the interval while holding the lease. Between
        ticks a follower checks the lease every quarter interval, and takes over (ticking at
        once) as soon as a dead leader's lease lapses."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        logs.ensure_handler()
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
                self._beat(broker, leader, next_tick)
                self._reap()
                self._outbox.poll()  # at most once a second; never raises
                time.sleep(max(0.0, min(0.2, next_tick - self.clock())))
        finally:
            with contextlib.suppress(BrokerError):
                broker.release_lease(LEASE, self.owner)
            with contextlib.suppress(BrokerError):
                broker.unregister_worker(self.owner)
        self.log(f"Scheduler {self.owner} stopped")
        return 0

    def _beat(self, broker: Any, leader: bool, next_tick: float) -> None:
        """Heartbeat every heartbeat_interval, and at once when the lease changed hands, so
        listings name the leader within a loop turn. A broker error is logged, never fatal."""
        info = self.info
        changed = info.leader != leader
        if not changed and time.monotonic() < self._next_beat:
            return
        self._next_beat = time.monotonic() + self.heartbeat_interval
        info.leader = leader
        info.state = "stopping" if self._stop else "leader" if leader else "standby"
        info.tick_interval, info.next_tick = self._interval, next_tick
        try:
            broker.heartbeat(info, self.heartbeat_ttl)
        except BrokerError as exc:
            self.log(f"broker unavailable, heartbeat not written: {exc}", WARN)

    def _reap(self) -> None:
        if self._reaper is None or time.monotonic() < self._next_reap:
            return
        reap, every = self._reaper
        self._next_reap = time.monotonic() + every
        try:
            settled = reap()
        except Exception as exc:  # noqa: BLE001 - housekeeping never stops the scheduler
            self.log(f"could not settle the jobs of dead workers: {exc}", WARN)
            return
        if settled:
            self.log(f"settled {len(settled)} job(s) of dead workers")

    def _lease(self, broker: Any) -> bool:
        """Take or renew the lease; an unreachable broker means "not leader" for now (logged),
        never a crash: the next check retries."""
        try:
            return bool(broker.acquire_lease(LEASE, self.owner, self.interval * 1.2))
        except BrokerError as exc:
            self.log(f"broker unavailable, will retry: {exc}", WARN)
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
        self.info.last_tick = time.time()
        self._next_beat = 0.0  # publish the tick with the next heartbeat, now
        try:
            broker.set_marker(LAST_TICK_MARKER, self.info.last_tick)
        except Exception as exc:  # noqa: BLE001 - metrics never stop the scheduler
            self.log(f"could not record the tick time: {exc}", WARN)

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
                self.log(f"{site}: tick failed: {traceback.format_exc(limit=3)}", WARN)
        return report

    def _tick_site(self, site: str, now: float, report: TickReport) -> None:
        with site_context(site, self.bench.path) as local:
            reason = inactive_reason(local)
            if reason:
                report.skipped_sites[site] = reason
                return
            interval = int(local.conf.get("scheduler_interval") or DEFAULT_INTERVAL)
            basis = schedule_basis(local.time_zone(), interval)
            for name in _candidates(local, now, basis):
                self._run_due(local, name, now, basis, report)

    def _run_due(
        self, local: SiteLocal, name: str, now: float, basis: str, report: TickReport
    ) -> None:
        from jobbench.documents import get_doc
        from jobbench.scheduler.run import enqueue_job_type

        try:
            local.db.commit()  # end the read of the candidates; each job type is one transaction
            local.db.begin_write()  # read and write it under the write lock (SQLite), see there
            doc = get_doc(JOB_TYPE, name)
            if doc.next_run_at is None or doc.schedule_basis != basis:
                # last_execution, the schedule, the zone or the interval changed since the
                # next run was derived: derive it again, and only then judge due-ness
                values = doc.refresh_schedule()
                local.db.set_value(JOB_TYPE, name, values, update_modified=False)
            if doc.next_run_at > now:
                local.db.commit()
                return
            slot = int(doc.next_run_at)
            outcome = enqueue_job_type(doc, slot=slot)
            if outcome == "duplicate":
                outcome = _slot_after_duplicate(doc, now)
            if outcome == "pending":
                local.db.commit()
                report.blocked.append(f"{local.site}:{name}")
                return
            _save_run(doc, now)
            if outcome == "enqueued":
                report.enqueued.append(f"{local.site}:{name}")
        except JobbenchError as exc:  # one bad job type never stops the others
            local.db.rollback()
            report.errors.append(f"{local.site}:{name}: {exc}")
            self.log(f"{local.site}: {name}: {exc}", WARN)

    def log(self, message: str, level: int = logging.INFO) -> None:
        """A line on the ``jobbench.scheduler`` logger (see jobbench.logs)."""
        if not self.quiet:
            logs.emit(LOG, message, level)


def _candidates(local: SiteLocal, now: float, basis: str) -> list[str]:
    """Job types that are due, or whose next run must be derived again (NULL: changed behind
    the document's back, see ``reschedule.py``; another basis: the zone or interval changed).
    Every term is an indexed lookup, so the cost follows those rows, not the table."""
    table = local.doctypes()[JOB_TYPE].get_meta().table
    c = table.c
    stmt = (
        sa.select(c.name)
        .where(
            sa.not_(sa.func.coalesce(c.stopped, sa.false())),
            sa.or_(
                c.next_run_at <= now,
                c.next_run_at.is_(None),
                c.schedule_basis.is_(None),
                c.schedule_basis < basis,
                c.schedule_basis > basis,
            ),
        )
        .order_by(c.next_run_at)
    )
    return [str(row[0]) for row in local.db.execute(stmt)]


def _slot_after_duplicate(doc: Any, now: float) -> str:
    """The stored slot was enqueued already: by a scheduler ticking it right now, or by one
    that died between its enqueue and its save. In the second case the slot after it may be
    due as well; enqueue that one (once) instead of skipping it when saving the run."""
    from jobbench.scheduler.run import enqueue_job_type

    following = doc.next_instant(after=dt.datetime.fromtimestamp(doc.next_run_at, dt.UTC))
    if following.timestamp() > now:
        return "duplicate"
    return enqueue_job_type(doc, slot=int(following.timestamp()))


def _save_run(doc: Any, now: float) -> None:
    """Record the run (last_execution = the tick time, the next slot after it) and commit.

    Another scheduler may save the same job type for the same slot at this very moment; on
    SQLite that makes this transaction's read snapshot stale ("database is locked" at once).
    Then write the same values again, in a transaction whose first statement is the write, so
    it simply waits for the other one."""
    from jobbench.context import current
    from jobbench.errors import LockWaitTimeoutError

    db = current().db
    instant = dt.datetime.fromtimestamp(now, dt.UTC)
    zone = current().time_zone()
    values: dict[str, Any] = {
        "last_execution": to_local(instant, zone).replace(fold=0),
        "last_run_at": now,
    }
    doc.update(values)
    values.update(doc.refresh_schedule(after=instant))
    try:
        db.set_value(JOB_TYPE, doc.name, values, update_modified=False)
        db.commit()
        return
    except LockWaitTimeoutError:
        db.rollback()
    db.set_value(JOB_TYPE, doc.name, values, update_modified=False)
    db.commit()
