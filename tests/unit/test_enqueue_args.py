"""redis_codec.enqueue_args: the one-record fast path must send exactly the ARGV the batch path
sends, so lua/enqueue.lua stores the same hash either way."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jobbench.brokers.base import EnqueueItem
from jobbench.brokers.redis_codec import _split_fields, enqueue_args
from jobbench.jobs.record import JobRecord


def _record(**fields: Any) -> JobRecord:
    base = {"id": "s::1", "site": "s", "queue": "q", "method": "m.f", "payload": b"{}"}
    return JobRecord(**{**base, **fields})


@settings(max_examples=200, deadline=None)
@given(
    attempts=st.integers(0, 2),
    timeout=st.one_of(st.none(), st.integers(-1, 900)),
    user=st.one_of(st.none(), st.text(max_size=6)),
    depends_on=st.lists(st.text(min_size=1, max_size=4), max_size=2),
)
def test_one_record_shares_what_a_batch_of_its_twins_shares(**fields: Any) -> None:
    record = _record(**fields)
    twin = dataclasses.replace(record)
    assert _split_fields([record]) == _split_fields([record, twin])
    assert _split_fields([record])[1] == []


def test_one_item_argv_matches_the_batch_path_item_for_item() -> None:
    record = _record(timeout=300, user="alice", attempts=0, retries_left=2)
    shared, _ = _split_fields([record, dataclasses.replace(record, id="s::2")])
    args = enqueue_args([EnqueueItem(record=record)], now=10.0, max_queued=None)
    assert args[5 : 5 + len(shared)] == shared  # after now, ttl, max_queued, dep ttl, count
    assert args[4] == len(shared) // 2
    assert "attempts" not in args[5 : 5 + len(shared)]  # zero counters are not stored
