"""The dashboard's chart geometry, throughput and time formatting, from made-up timelines (no
broker: ``Broker.timeline()`` itself is tested in tests/contract/test_timeline.py)."""

from __future__ import annotations

import datetime as dt

import pytest

pytest.importorskip("markupsafe")

from jobbench.dashboard import charts  # noqa: E402
from jobbench.dashboard.timefmt import duration, relative, to_epoch, when  # noqa: E402

NOW = 1_800_000_000.0 + 30  # 30 s into a minute (and into an hour: 1.8e9 is a whole hour)
MINUTE = int(NOW // 60)


def test_hour_chart_buckets_minutes_and_leaves_out_older_ones() -> None:
    timeline = {
        (MINUTE, "default", "finished"): 3,
        (MINUTE, "long", "finished"): 1,
        (MINUTE, "default", "failed"): 2,
        (MINUTE - 59, "default", "finished"): 5,  # the first bar
        (MINUTE - 60, "default", "finished"): 7,  # an hour ago: outside
    }
    hour, day = charts.hour_and_day(timeline, "UTC", NOW)
    assert len(hour.bars) == 60 and len(day.bars) == 24
    assert hour.bars[-1].values == {"finished": 4, "failed": 2}
    assert hour.bars[0].values == {"finished": 5, "failed": 0}
    assert hour.totals == {"finished": 9, "failed": 2}
    assert day.totals == {"finished": 16, "failed": 2}  # the older minute is in today's chart
    assert [t["value"] for t in hour.y_ticks] == [0, 5, 10]  # the peak, 6, rounded up to 10
    assert hour.x_ticks[0]["label"] == "07:01" and len(hour.x_ticks) == 6
    stacked = hour.bars[-1].rects
    assert [r["kind"] for r in stacked] == ["finished", "failed"]
    assert stacked[0]["y"] > stacked[1]["y"]  # failed sits on top of finished
    bottom = charts.TOP + charts.HEIGHT
    assert stacked[0]["y"] + stacked[0]["height"] == pytest.approx(bottom)
    assert stacked[0]["height"] == pytest.approx(4 / 10 * charts.HEIGHT)


def test_day_chart_is_per_hour_in_the_display_zone() -> None:
    timeline = {(MINUTE - 60, "q", "failed"): 1, (MINUTE - 24 * 60, "q", "failed"): 9}
    day = charts.hour_and_day(timeline, "Asia/Tokyo", NOW)[1]
    assert day.bars[-2].values["failed"] == 1 and day.totals["failed"] == 1
    assert day.bars[-1].label == "17:00"  # 08:00 UTC in Tokyo
    assert day.x_label == "time (Asia/Tokyo)" and day.unit == "hour"


def test_throughput_is_finished_per_minute_over_the_last_five() -> None:
    timeline = {
        (MINUTE, "a", "finished"): 6,
        (MINUTE - 4, "a", "finished"): 4,
        (MINUTE - 5, "a", "finished"): 100,  # six minutes back: outside
        (MINUTE, "a", "failed"): 50,
        (MINUTE, "b", "finished"): 1,
    }
    assert charts.throughput(timeline, NOW) == {"a": 2.0, "b": 0.2}


def test_nice_ceiling() -> None:
    assert [charts.nice_ceiling(n) for n in (0, 1, 2, 3, 6, 11, 51, 999, 1001)] == [
        1, 1, 2, 5, 10, 20, 100, 1000, 2000,
    ]  # fmt: skip


def test_times_relative_and_durations() -> None:
    assert [relative(s) for s in (0, -4, -90, 7200, -86400 * 3)] == [
        "just now", "just now", "1 min ago", "in 2 h", "3 d ago",
    ]  # fmt: skip
    assert [duration(s) for s in (0.5, 12, 125.4, 3725, None, -1)] == [
        "0.50 s", "12 s", "2 min 5 s", "1 h 2 min 5 s", "", "",
    ]  # fmt: skip
    naive = dt.datetime(2026, 1, 2, 3, 4, 5)
    assert to_epoch(naive, "UTC") == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC).timestamp()
    assert to_epoch(naive, "Asia/Kolkata") == to_epoch(naive, "UTC") - 5.5 * 3600  # type: ignore[operator]
    assert to_epoch("not a time", "UTC") is None and to_epoch(float("nan"), "UTC") is None
    shown = str(when(to_epoch(naive, "UTC"), "Asia/Kolkata", now=to_epoch(naive, "UTC")))
    assert shown.endswith(">2026-01-02 08:34:05</time>") and 'title="just now"' in shown
    assert 'datetime="2026-01-02T08:34:05+05:30"' in shown
    assert str(when(None, "UTC")) == "-" and str(when(True, "UTC")) == "-"
