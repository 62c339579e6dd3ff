"""Port of frappe/tests/test_scheduler.py (with ``TestSchedulerHeartbeat``, merged PR #40866).

Frappe's ``enqueue_events()`` is one tick of our Scheduler (``Scheduler.tick()``); a frozen
clock is the Scheduler's ``clock``. Frappe's scheduler heartbeat (a Redis key with a TTL that
says "a scheduler process is alive") maps onto what jobbench has for the same purpose: the
scheduler's lease in the broker (taken without blocking, renewed every tick, lasting 1.2
ticks, released on exit) and the broker marker ``scheduler_last_tick`` written after each
tick. Frappe's setUp/tearDown purge every queue; here every test has a fresh bench.
"""

# The first docstring line of each test names its Frappe case in full (file::Class::test),
# which may run past 100 characters.
# ruff: noqa: E501

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

import jobbench as frappe
from integration.scheduler_helpers import wait_until
from jobbench.scheduler import scheduler as scheduler_module
from jobbench.scheduler.scheduler import LAST_TICK_MARKER, LEASE, Scheduler, TickReport
from ports import free_port

from .conftest import JOB_TYPE, Compat

DEFAULT_SCHEDULER_TICK = 240  # Frappe's default tick; jobbench's default is 60 s


def get_test_job(method: str = "compat.jobs.sleep_ten", frequency: str = "All") -> Any:
    """A job type that is always due: its last run was in 2010 (in the current site context;
    the site is fresh, so it is inserted here)."""
    job = frappe.new_doc(
        JOB_TYPE, method=method, last_execution="2010-01-01 00:00:00", frequency=frequency
    )
    job.insert()
    frappe.db.commit()
    return job


@pytest.fixture
def keep_signals() -> Iterator[None]:
    """Scheduler.run() installs SIGTERM/SIGINT handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


class Stop(RuntimeError):
    """Raised by a probe to end Scheduler.run() (Frappe's side_effect=RuntimeError("stop"))."""


class ProbeScheduler(Scheduler):
    """A Scheduler whose tick records the (fake) time it ran at instead of visiting sites;
    ``stop_after`` ticks end ``run()`` with ``Stop``."""

    def __init__(self, *args: Any, stop_after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ticks: list[float] = []
        self.stop_after = stop_after

    def tick(self, now: float | None = None) -> TickReport:
        self.ticks.append(self.clock())
        if len(self.ticks) >= self.stop_after:
            raise Stop("stop")
        return TickReport()


class FakeClock:
    """A frozen clock that only moves when the scheduler sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _utc(delta: dt.timedelta) -> float:
    return (dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + delta).timestamp()


# -- TestScheduler ------------------------------------------------------------------------------
def test_enqueue_jobs(fc: Compat) -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestScheduler::test_enqueue_jobs.

    With every job type last run in 2010, one tick enqueues the daily-maintenance, weekly-long
    and monthly jobs (among all the others)."""
    with fc.ctx():
        frappe.db.sql("update `tabScheduled Job Type` set last_execution = '2010-01-01 00:00:00'")
        frappe.db.commit()

    report = Scheduler(fc.bench, quiet=True).tick()

    assert not report.errors, report
    enqueued = fc.methods_of([entry.split(":", 1)[1] for entry in report.enqueued])
    assert "frappe.desk.notifications.clear_notifications" in enqueued
    assert "frappe.utils.change_log.check_for_update" in enqueued
    assert "frappe.email.doctype.auto_email_report.auto_email_report.send_monthly" in enqueued


def test_queue_peeking(fc: Compat) -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestScheduler::test_queue_peeking.

    A due job type whose run is already in the queue is not enqueued again (Frappe fakes the
    queued run with a mock; here the first enqueue really queues it)."""
    with fc.ctx():
        job = get_test_job()
        assert job.enqueue() is True  # due: its run goes into the queue
        assert job.is_job_in_queue()
        # 1st run is in the queue (or running): don't enqueue it again
        assert job.enqueue() is False
        runs = fc.broker().find(site="site1", limit=10)
        assert [r.job_id for r in runs] == [job.rq_job_id]


def test_is_dormant() -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestScheduler::test_is_dormant.

    Skipped: dormancy is a Frappe Cloud rule jobbench does not have."""
    pytest.skip(
        "Frappe Cloud dormancy (is_dormant: a site without user activity for dormant_days "
        "runs its scheduler once a day) applies only on Frappe Cloud; jobbench has no users' "
        "last activity and no dormancy"
    )


def test_once_a_day_for_dormant() -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestScheduler::test_once_a_day_for_dormant.

    Skipped: dormancy is a Frappe Cloud rule jobbench does not have."""
    pytest.skip(
        "Frappe Cloud dormancy (schedule_jobs_based_on_activity) applies only on Frappe "
        "Cloud; jobbench schedules every active site at every tick"
    )


def test_real_time_alignment(
    fc_sqlite: Compat, monkeypatch: pytest.MonkeyPatch, keep_signals: None
) -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestScheduler::test_real_time_alignment.

    With a 240 s tick the scheduler waits until the next wall-clock multiple of 240 s (a
    full tick when it starts exactly on one)."""
    fc_sqlite.set_common(scheduler_tick_interval=DEFAULT_SCHEDULER_TICK)
    test_cases = {
        dt.timedelta(minutes=0): 240,
        dt.timedelta(minutes=0, seconds=12): 228,
        dt.timedelta(minutes=1, seconds=12): 168,
        dt.timedelta(hours=23, minutes=59): 60,
        dt.timedelta(hours=23, minutes=59, seconds=30): 30,
        dt.timedelta(minutes=0, seconds=1): 239,
        dt.timedelta(minutes=2): 120,
    }
    for delta, expected_sleep in test_cases.items():
        clock = FakeClock(_utc(delta))
        probe = ProbeScheduler(fc_sqlite.bench, quiet=True, clock=clock, stop_after=2)
        with monkeypatch.context() as patch:
            patch.setattr(scheduler_module.time, "sleep", clock.sleep)
            with pytest.raises(Stop):
                probe.run()
        # it ticks once on taking the lease at start, then at the aligned time
        first, aligned = probe.ticks
        assert first == _utc(delta), delta
        assert aligned - first == pytest.approx(expected_sleep, abs=1e-3), delta


# -- TestSchedulerHeartbeat ---------------------------------------------------------------------
def test_start_scheduler_uses_heartbeat_sleep(
    fc: Compat, monkeypatch: pytest.MonkeyPatch, keep_signals: None
) -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestSchedulerHeartbeat::test_start_scheduler_uses_heartbeat_sleep.

    The scheduler takes its lease without blocking, keeps it through the 120 s it sleeps until
    the aligned tick, then ticks."""
    fc.set_common(scheduler_tick_interval=DEFAULT_SCHEDULER_TICK)
    broker = fc.broker()
    clock = FakeClock(_utc(dt.timedelta(minutes=2)))  # 120 s before the next 240 s boundary
    held: list[bool] = []

    def sleep_and_probe(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) % 100 == 1:  # every 20 s or so: could another scheduler take over?
            held.append(not broker.acquire_lease(LEASE, "another-scheduler", 1.0))

    probe = ProbeScheduler(fc.bench, quiet=True, clock=clock, stop_after=2)
    monkeypatch.setattr(scheduler_module.time, "sleep", sleep_and_probe)
    with pytest.raises(RuntimeError, match="stop"):
        probe.run()
    monkeypatch.undo()

    assert probe.ticks[0] == _utc(dt.timedelta(minutes=2))  # the lease came without waiting
    assert sum(clock.slept) == pytest.approx(120, abs=1e-3)  # slept to the aligned tick
    assert probe.ticks[1] == pytest.approx(_utc(dt.timedelta(minutes=4)), abs=1e-3)
    assert held and all(held), "the lease stayed with the sleeping scheduler"


def test_scheduler_heartbeat_before_each_site() -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestSchedulerHeartbeat::test_scheduler_heartbeat_before_each_site.

    Skipped: jobbench records the scheduler's liveness per tick, not per site."""
    pytest.skip(
        "jobbench has no per-site scheduler heartbeat: the lease is renewed and "
        "scheduler_last_tick written once per tick (a tick reads only due job types), so "
        "there is no heartbeat before each site to count"
    )


def _lease_free(fc: Compat) -> bool:
    """Whether no scheduler holds the lease (checked by taking it for a moment)."""
    broker = fc.broker()
    if broker.acquire_lease(LEASE, "probe", 5.0):
        broker.release_lease(LEASE, "probe")
        return True
    return False


def test_scheduler_heartbeat(fc: Compat) -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestSchedulerHeartbeat::test_scheduler_heartbeat.

    A running ``jobbench schedule`` holds the lease and writes the time of its tick; with no
    scheduler running nobody holds it."""
    fc.set_common(scheduler_tick_interval=1)
    broker = fc.broker()
    assert broker.get_marker(LAST_TICK_MARKER) is None
    assert _lease_free(fc)  # no scheduler process: "not running"

    began = time.time()
    proc = fc.start("schedule", "schedule")
    tick = wait_until(lambda: broker.get_marker(LAST_TICK_MARKER), 30, "the first tick")
    assert began <= tick <= time.time()
    assert not _lease_free(fc)  # the lease is held: "running"

    assert proc.stop() == 0, proc.output()
    assert _lease_free(fc)  # released on exit: "not running"


def test_scheduler_heartbeat_redis_failure(fc: Compat) -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestSchedulerHeartbeat::test_scheduler_heartbeat_redis_failure.

    When Redis cannot be reached the scheduler logs a warning and keeps running instead of
    raising."""
    if fc.kind != "redis":
        pytest.skip(
            "a Redis outage; the SQLite broker is a local file with no outage to cause "
            "without mocks (a locked file only errors after a 30 s busy timeout)"
        )
    fc.set_common(scheduler_tick_interval=1, redis_queue=f"redis://127.0.0.1:{free_port()}/0")
    proc = fc.start("schedule", "schedule")
    wait_until(lambda: "broker unavailable" in proc.output(), 30, "the warning")
    time.sleep(1.5)  # more ticks come and fail: still running
    assert proc.proc.poll() is None, proc.output()
    assert proc.stop() == 0, proc.output()
    assert "stopped" in proc.output()


def test_scheduler_heartbeat_during_sleep(fc: Compat) -> None:
    """Frappe: frappe/tests/test_scheduler.py::TestSchedulerHeartbeat::test_scheduler_heartbeat_during_sleep.

    Between ticks the scheduler's lease never lapses and its tick time keeps moving on."""
    fc.set_common(scheduler_tick_interval=1)
    broker = fc.broker()
    proc = fc.start("schedule", "schedule")
    first = wait_until(lambda: broker.get_marker(LAST_TICK_MARKER), 30, "the first tick")
    seen = {first}
    end = time.monotonic() + 3.2
    while time.monotonic() < end:
        assert not broker.acquire_lease(LEASE, "another-scheduler", 0.1), "the lease lapsed"
        seen.add(broker.get_marker(LAST_TICK_MARKER))
        time.sleep(0.1)
    assert proc.stop() == 0, proc.output()
    assert len(seen) >= 3, f"tick times seen: {sorted(seen)}"
