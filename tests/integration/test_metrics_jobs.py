"""Prometheus counters and the duration histogram after real jobs ran in a burst worker."""

from __future__ import annotations

import re

from jobbench.inspect import Inspector, metrics_text

from .jobs_helpers import (
    Engine,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
)


def test_metrics_count_started_finished_failed_and_durations(engine: Engine) -> None:
    for n in range(3):
        enqueue(engine, jobs_path("add"), a=n, b=1)
    enqueue(engine, jobs_path("write_task_then_fail"), subject="x")
    enqueue(engine, jobs_path("add"), site="site2", a=1, b=1)

    engine.run_worker("default")

    counters = engine.broker().counters()
    assert counters[("site1", "default", "started")] == 4
    assert counters[("site1", "default", "finished")] == 3
    assert counters[("site1", "default", "failed")] == 1
    assert counters[("site2", "default", "finished")] == 1

    text = metrics_text(Inspector(engine.bench))
    lines = text.splitlines()
    assert "# TYPE jobbench_jobs_started_total counter" in lines
    assert 'jobbench_jobs_started_total{site="site1",queue="default"} 4' in lines
    assert 'jobbench_jobs_finished_total{site="site1",queue="default"} 3' in lines
    assert 'jobbench_jobs_failed_total{site="site1",queue="default"} 1' in lines
    assert 'jobbench_jobs_finished_total{site="site2",queue="default"} 1' in lines
    assert "# TYPE jobbench_job_duration_seconds histogram" in lines
    assert 'jobbench_job_duration_seconds_bucket{queue="default",le="+Inf"} 5' in lines
    assert 'jobbench_job_duration_seconds_count{queue="default"} 5' in lines
    buckets = [
        (m.group(1), int(m.group(2)))
        for m in re.finditer(
            r'^jobbench_job_duration_seconds_bucket\{queue="default",le="([^"]+)"\} (\d+)$',
            text,
            re.M,
        )
    ]
    assert buckets[0][0] == "0.005" and buckets[-1] == ("+Inf", 5)
    assert [n for _, n in buckets] == sorted(n for _, n in buckets)
    (total,) = re.findall(
        r'^jobbench_job_duration_seconds_sum\{queue="default"\} (\S+)$', text, re.M
    )
    assert 0.0 <= float(total) < 30.0
    assert "jobbench_workers_alive 0" in lines
