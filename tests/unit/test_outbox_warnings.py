"""doctor's warnings about the job outbox (jobbench.jobs.outbox_table.warnings): a site whose
oldest waiting after-commit job is 30 s old or more, an outbox that cannot be read, a site
database without the table."""

from __future__ import annotations

from jobbench.jobs.outbox_table import WARN_AGE, OutboxStats, warnings

NOW = 1_000_000.0


def test_only_jobs_waiting_past_the_threshold_are_warned_about() -> None:
    fresh = OutboxStats("a", undelivered=5, oldest_created=NOW - WARN_AGE + 1)
    stale = OutboxStats(
        "b", undelivered=2, oldest_created=NOW - 95, last_error="BrokerUnavailable: x"
    )
    empty = OutboxStats("c")
    (line,) = warnings([fresh, stale, empty], now=NOW)
    assert line.startswith("site b: 2 after-commit job(s) wait in the outbox, the oldest for 95 s")
    assert "outbox flush" in line and line.endswith("last error: BrokerUnavailable: x")
    assert stale.to_dict(NOW)["oldest_age"] == 95 and empty.to_dict(NOW)["oldest_age"] is None


def test_an_unreadable_outbox_and_a_missing_table_are_named() -> None:
    lines = warnings(
        [OutboxStats("a", unreadable="database down"), OutboxStats("b", missing=True)], now=NOW
    )
    assert lines[0] == "site a: the job outbox cannot be read: database down"
    assert "site b: no job outbox table" in lines[1] and "jobbench --site b migrate" in lines[1]
