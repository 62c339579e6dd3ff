"""The Inspector's view of scheduler liveness on both brokers, from heartbeats written the way
a scheduler writes them (WorkerInfo kind="scheduler"): workers() leaves schedulers out,
schedulers() puts the leader first, scheduler_liveness() derives the next tick due from the
broker's last-tick marker, and doctor warns when a running scheduler stopped ticking."""

from __future__ import annotations

import time

from jobbench.brokers.base import WorkerInfo
from jobbench.inspect import Inspector, metrics_text
from jobbench.scheduler.scheduler import LAST_TICK_MARKER

from .jobs_helpers import Engine, engine_fixture  # noqa: F401 - the engine fixture


def _scheduler(name: str, leader: bool, last_tick: float | None = None) -> WorkerInfo:
    state = "leader" if leader else "standby"
    return WorkerInfo(
        name, 4242, "host-b", [], state, kind="scheduler", leader=leader, last_tick=last_tick
    )


def test_schedulers_are_listed_apart_from_workers(engine: Engine) -> None:
    broker = engine.broker()
    now = time.time()
    broker.heartbeat(WorkerInfo("w1", 1, "host-a", ["default"]), ttl=30)
    broker.heartbeat(_scheduler("s-standby", False), ttl=30)
    broker.heartbeat(_scheduler("s-leader", True, now - 5), ttl=30)
    broker.set_marker(LAST_TICK_MARKER, now - 5)
    engine.set_common(scheduler_tick_interval=60)
    inspector = Inspector(engine.bench, broker)

    assert [w.name for w in inspector.workers()] == ["w1"]
    assert [(p.name, p.leader) for p in inspector.schedulers()] == [
        ("s-leader", True),
        ("s-standby", False),
    ]
    live = inspector.scheduler_liveness(now)
    assert (live.alive, live.leader, live.late) == (True, "s-leader", False)
    assert live.last_tick == now - 5 and live.next_tick_due == now - 5 + 60
    assert "jobbench_schedulers_alive 2" in metrics_text(inspector)
    assert "jobbench_workers_alive 1" in metrics_text(inspector)


def test_doctor_warns_when_the_running_scheduler_stopped_ticking(engine: Engine) -> None:
    broker = engine.broker()
    engine.set_common(scheduler_tick_interval=1)
    broker.heartbeat(_scheduler("s1", True), ttl=30)
    broker.set_marker(LAST_TICK_MARKER, time.time() - 30)  # 30 ticks ago
    inspector = Inspector(engine.bench, broker)
    assert inspector.scheduler_liveness().late is True
    (warning,) = inspector.doctor(["site1"])["warnings"]
    assert "the scheduler's last tick was 30 s ago (it ticks every 1 s)" in warning
    assert "s1" in warning
    broker.unregister_worker("s1")
    assert inspector.scheduler_liveness().alive is False
