"""acquire_lease / release_lease: the scheduler's leader election."""

from __future__ import annotations

import threading
import time

from jobbench.brokers.base import Broker

from .helpers import BrokerSpec, wait_until


def test_a_free_lease_is_taken(broker: Broker) -> None:
    assert broker.acquire_lease("scheduler", "a", ttl=30) is True


def test_the_owner_renews_its_lease(broker: Broker) -> None:
    assert broker.acquire_lease("scheduler", "a", ttl=0.3) is True
    assert broker.acquire_lease("scheduler", "a", ttl=30) is True
    time.sleep(0.45)  # past the first ttl: the renewal extended it
    assert broker.acquire_lease("scheduler", "b", ttl=30) is False
    assert broker.acquire_lease("scheduler", "a", ttl=30) is True


def test_another_owner_is_refused_until_the_lease_expires(broker: Broker) -> None:
    assert broker.acquire_lease("scheduler", "a", ttl=0.3) is True
    assert broker.acquire_lease("scheduler", "b", ttl=30) is False
    wait_until(lambda: broker.acquire_lease("scheduler", "b", ttl=30), timeout=5)
    assert broker.acquire_lease("scheduler", "a", ttl=30) is False


def test_release_frees_the_lease_only_for_its_owner(broker: Broker) -> None:
    assert broker.acquire_lease("scheduler", "a", ttl=30) is True
    broker.release_lease("scheduler", "b")  # not the owner: no effect
    assert broker.acquire_lease("scheduler", "b", ttl=30) is False
    broker.release_lease("scheduler", "a")
    assert broker.acquire_lease("scheduler", "b", ttl=30) is True
    broker.release_lease("scheduler", "b")
    broker.release_lease("scheduler", "b")  # again: harmless


def test_leases_of_different_names_are_independent(broker: Broker) -> None:
    assert broker.acquire_lease("scheduler", "a", ttl=30) is True
    assert broker.acquire_lease("cleanup", "b", ttl=30) is True
    assert broker.acquire_lease("cleanup", "a", ttl=30) is False
    broker.release_lease("scheduler", "a")
    assert broker.acquire_lease("cleanup", "a", ttl=30) is False


def test_concurrent_contenders_never_both_hold_the_lease(
    broker: Broker, broker_spec: BrokerSpec
) -> None:
    contenders = [broker_spec.make() for _ in range(8)]
    barrier = threading.Barrier(len(contenders))
    won: list[str] = []

    def run(n: int, b: Broker) -> None:
        barrier.wait(timeout=10)
        if b.acquire_lease("scheduler", f"owner{n}", ttl=30):
            won.append(f"owner{n}")

    threads = [threading.Thread(target=run, args=(n, b)) for n, b in enumerate(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for b in contenders:
        b.close()
    assert len(won) == 1
    assert broker.acquire_lease("scheduler", won[0], ttl=30) is True
    assert broker.acquire_lease("scheduler", "late", ttl=30) is False
