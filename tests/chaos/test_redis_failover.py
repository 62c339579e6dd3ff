"""Redis failover (issue 11, scenario a): a master, one replica and three sentinels the test
starts (tests/redis_servers.py); the bench reaches Redis only through the sentinels (Frappe's
``redis_queue_sentinel_*`` keys). While a producer enqueues and two real worker processes
drain, the replica is cut off and the master SIGKILLed 0.3 s later; the sentinels promote
the replica, the killed node comes back as a replica of the new master, and everything goes on
without a restart: the workers, the producer, a ``jobbench schedule`` process (it ticks on the
new master) and an Inspector made before the failover (what the dashboard reads through).

With ``redis_queue_wait_replicas: 1`` every write the broker acknowledges reached the replica,
so every job whose enqueue returned is accounted for (finished, or failed with a reason), none
is left started and none ran twice. Without it (replication is asynchronous) an acknowledged
write can vanish with the master: that form only measures what was lost (long form, and
``scripts/failover_report.py``, which writes the figures into docs/reliability.md).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jobbench
from jobbench.errors import BrokerUnavailable
from jobbench.inspect import Inspector
from jobbench.jobs.record import full_id
from jobbench.scheduler.scheduler import LAST_TICK_MARKER

from .helpers import APP, Accounting, Chaos, Proc, account, make_chaos, report_figures, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from redis_servers import (  # noqa: E402 - tests/ is not a package
    MASTER_SERVICE,
    Server,
    replicating,
    sentinel_master_port,
    start_sentinels,
    stop_all,
)

CI_JOBS = 300
LONG_JOBS = 2000
WORKERS = 2
BLIP = 0.3  # seconds between cutting the replica off and killing the master


class Topology:
    """The servers of one test: data nodes by port, the sentinels."""

    def __init__(self, tmp: Path) -> None:
        master, replica, self.sentinels = start_sentinels(tmp / "redis")
        self.nodes = {master.port: master, replica.port: replica}

    def servers(self) -> list[Server]:
        return [*self.nodes.values(), *self.sentinels]

    def master(self) -> Server:
        return self.nodes[sentinel_master_port(self.sentinels)]

    def fail_over(self) -> float:
        """Cut the replica off (its link killed, and it cannot log in again: a partition
        between master and replica), SIGKILL the master BLIP seconds later; wait for the sentinels
        to promote the replica; start the killed node again as a replica of the new master.
        Returns the seconds from the kill to a new master.

        Without the partition nothing is lost on loopback: what the master wrote to the
        replica's socket before dying is still delivered, and a cut link alone is back within
        milliseconds. The partition is what a real network adds: writes acknowledged while the
        replica cannot have them."""
        old = self.master()
        admin = old.client()
        admin.config_set("requirepass", "partition")  # the replica cannot log in again...
        admin.client_kill_filter(_type="replica")  # ...once its link is cut; clients' stay
        time.sleep(BLIP)
        down = time.monotonic()
        old.kill()
        wait_until(lambda: sentinel_master_port(self.sentinels) != old.port, 30, "a new master")
        took = time.monotonic() - down
        new = self.master()
        old.args = ["--replicaof", "127.0.0.1", str(new.port)]
        old.start()
        wait_until(lambda: replicating(old), 30, "the old master to replicate the new one")
        return took


@pytest.fixture(name="topology")
def topology_fixture(tmp_path: Path) -> Iterator[Topology]:
    topo = Topology(tmp_path)
    try:
        yield topo
    finally:
        stop_all(topo.servers())


def _sentinel_config(topo: Topology, wait: bool) -> dict[str, Any]:
    return {
        "redis_queue_sentinel_enabled": 1,
        "redis_queue_sentinels": [f"127.0.0.1:{s.port}" for s in topo.sentinels],
        "redis_queue_master_service": MASTER_SERVICE,
        "redis_queue_socket_timeout": 2,
        "redis_queue_wait_replicas": 1 if wait else 0,
        "redis_queue_wait_timeout": 1,
        "scheduler_tick_interval": 0.5,
    }


def _produce(chaos: Chaos, jobs: int, ids: list[str], failures: dict[str, int]) -> None:
    with chaos.ctx():
        i = 0
        while len(ids) < jobs:
            job_id = f"f{i}"
            i += 1
            try:
                jobbench.enqueue(
                    f"{APP}.jobs.effect",
                    queue="short",
                    job_id=job_id,
                    path=chaos.effects_file,
                    pause=0.005,
                )
            except BrokerUnavailable:  # ReplicationTimeout too: not acknowledged
                failures["enqueue"] += 1
                time.sleep(0.05)
                continue
            ids.append(full_id("site1", job_id))
            time.sleep(0.002)


@pytest.mark.parametrize("wait", [True, False], ids=["wait", "no-wait"])
def test_master_killed_mid_run(
    topology: Topology, tmp_path: Path, long_form: bool, wait: bool
) -> None:
    if not wait and not long_form:
        pytest.skip("without WAIT losses are measured, not asserted: --chaos-long only")
    gen = make_chaos("redis", tmp_path / "bench", redis_url=topology.master().url)
    chaos = next(gen)
    try:
        _run(chaos, topology, long_form, wait)
    finally:
        gen.close()


def _run(chaos: Chaos, topo: Topology, long_form: bool, wait: bool) -> None:
    chaos.bench.update_common_config(_sentinel_config(topo, wait))
    jobs = LONG_JOBS if long_form else CI_JOBS
    failovers = 3 if long_form else 1
    workers = [chaos.start_worker(f"failover-w{i}") for i in range(WORKERS)]
    supervisors = [w.pid for w in workers]
    scheduler = chaos.start("scheduler", [sys.executable, "-m", "jobbench", "--bench", chaos.path,
                                          "schedule"])  # fmt: skip
    inspector = Inspector(chaos.bench)  # what the dashboard reads through
    assert [q.name for q in inspector.queues()]
    # A worker whose first heartbeat fails exits (it never started): the kill comes later.
    wait_until(lambda: len(chaos.broker().workers()) == WORKERS, 60, "both workers to start")
    ids: list[str] = []
    failures = {"enqueue": 0}
    producer = threading.Thread(target=_produce, args=(chaos, jobs, ids, failures), daemon=True)
    started = time.monotonic()
    producer.start()
    promoted: list[float] = []
    for n in range(failovers):
        wait_until(lambda n=n: len(ids) >= (n + 1) * jobs // (failovers + 2), 60, "enqueues")
        promoted.append(topo.fail_over())
    failed_over_at = time.time()
    producer.join(300)
    assert not producer.is_alive(), "the producer never finished"
    acc = _drained(chaos, ids)
    _followed(chaos, scheduler, inspector, failed_over_at, acc)
    figures: dict[str, Any] = {
        "scenario": "redis_failover", "wait_replicas": 1 if wait else 0, "jobs": acc.jobs,
        "failovers": failovers, "enqueue_failures": failures["enqueue"],
        "finished": acc.finished, "failed": acc.failed, "failed_worker_died": acc.worker_died,
        "lost": len(acc.lost), "not_final": len(acc.not_final),
        "duplicates": len(acc.duplicates), "max_promotion_s": round(max(promoted), 1),
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    report_figures(figures)
    logs = "\n".join(w.log.read_text()[-1500:] for w in workers)
    for w, pid in zip(workers, supervisors, strict=True):
        assert w.alive() and w.pid == pid, logs  # no restart: the same supervisors throughout
    assert acc.not_final == [], (acc.not_final[:10], logs)
    if wait:
        assert acc.problems() == {}, (figures, acc.problems(), logs)
        assert acc.finished + acc.failed == jobs
        assert acc.other_failures == [], (acc.other_failures[:5], logs)


def _drained(chaos: Chaos, ids: list[str]) -> Accounting:
    """Wait for the queue to drain and the jobs to settle; account for every id."""
    broker = chaos.broker()  # the producer's own broker: it followed the failover
    wait_until(lambda: broker.queue_length("short") == 0, 120, "queue to drain")
    settle_by = time.monotonic() + 25  # a job cut off is settled by a reap (every 10 s)
    while chaos.pending() and time.monotonic() < settle_by:
        time.sleep(0.2)
    return account(broker, ids, chaos.effects())


def _followed(
    chaos: Chaos, scheduler: Proc, inspector: Inspector, since: float, acc: Accounting
) -> None:
    """The scheduler process ticked on the new master, and the Inspector made before the
    failover reads it: neither was restarted."""
    broker = chaos.broker()
    ticked = lambda: (broker.get_marker(LAST_TICK_MARKER) or 0) > since  # noqa: E731
    wait_until(ticked, 30, "a scheduler tick after the failover")
    assert scheduler.alive(), scheduler.log.read_text()[-2000:]
    short = {q.name: q for q in inspector.queues()}["short"]  # scheduled runs may add others
    assert short.counts.get("finished", 0) >= acc.finished
