"""OpenTelemetry (jobbench[otel]), with the SDK's exporters: a span per enqueue (PRODUCER, a
child of the caller's span) and per execution (CONSUMER, a child of the enqueue's span) in one
trace; in this process, and across a real worker process whose app configures a tracer
provider; and nothing at all without a configured provider."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import IN_CI  # tests/conftest.py

from .jobs_helpers import APP, Engine, engine_fixture, enqueue, jobs_path  # noqa: F401

try:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
except ImportError:  # pragma: no cover - the test extra installs it
    if IN_CI:
        raise
    pytest.skip(
        "opentelemetry-sdk is not installed (pip install -e '.[test]')", allow_module_level=True
    )

# The app module a worker process imports to run the job: it configures a tracer provider
# that writes each ended span as a JSON line to $TRACED_SPANS, as an app would configure its
# exporter at import.
TRACED_JOBS = """
import json
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class FileExporter(SpanExporter):
    def export(self, spans):
        with open(os.environ["TRACED_SPANS"], "a") as out:
            for s in spans:
                parent = s.parent.span_id if s.parent else None
                out.write(json.dumps({
                    "name": s.name, "kind": s.kind.name, "trace_id": s.context.trace_id,
                    "span_id": s.context.span_id, "parent_id": parent,
                    "attributes": dict(s.attributes), "status": s.status.status_code.name,
                }) + "\\n")
        return SpanExportResult.SUCCESS


if os.environ.get("TRACED_SPANS"):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)


def traced(x):
    with trace.get_tracer("app").start_as_current_span("inside the job"):
        return x * 2


def traced_fail():
    raise ValueError("traced failure")
"""


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider for this test only (the API lets a process set one just once,
    so it is put in place and taken away again)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield exporter
    provider.shutdown()


def _traced_app(engine: Engine) -> None:
    (engine.bench.path / "apps" / APP / "tracedjobs.py").write_text(TRACED_JOBS)


def _by_name(items: Any) -> dict[str, Any]:
    return {s.name: s for s in items}


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_enqueue_and_execution_spans_form_one_trace(
    engine: Engine, spans: InMemorySpanExporter
) -> None:
    from jobbench.jobs.execute import execute_job

    _traced_app(engine)
    with trace.get_tracer("web").start_as_current_span("POST /orders") as request:
        job = enqueue(engine, f"{APP}.tracedjobs.traced", x=21, job_id="t1")
    record = engine.record("t1")
    assert record is not None and record.trace_context
    assert json.loads(record.trace_context)["traceparent"].startswith("00-")
    outcome = execute_job(record, engine.bench, engine.broker())
    assert outcome.status == "finished"

    got = _by_name(spans.get_finished_spans())
    web, sent = got["POST /orders"], got[f"enqueue {APP}.tracedjobs.traced"]
    run, inner = got[f"execute {APP}.tracedjobs.traced"], got["inside the job"]
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in (web, sent, run, inner)} == {trace_id}
    assert sent.parent.span_id == web.context.span_id and sent.kind == trace.SpanKind.PRODUCER
    assert run.parent.span_id == sent.context.span_id and run.kind == trace.SpanKind.CONSUMER
    assert inner.parent.span_id == run.context.span_id  # the job's own spans nest under it
    assert sent.attributes["messaging.message.id"] == "site1::t1" == job.record.id
    assert dict(run.attributes) == {
        "messaging.system": "jobbench",
        "messaging.destination.name": "default",
        "messaging.message.id": "site1::t1",
        "jobbench.method": f"{APP}.tracedjobs.traced",
        "jobbench.site": "site1",
        "jobbench.outcome": "finished",
    }


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_without_a_tracer_provider_no_context_is_written(engine: Engine) -> None:
    enqueue(engine, jobs_path("add"), a=1, b=2, job_id="plain")
    record = engine.record("plain")
    assert record is not None and record.trace_context is None


def test_a_real_worker_continues_the_trace(
    engine: Engine, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    """The worker process's app configures its own provider (exporting to a file); the
    execution span there is a child of the enqueue span made here, in the same trace."""
    _traced_app(engine)
    with trace.get_tracer("web").start_as_current_span("POST /orders") as request:
        enqueue(engine, f"{APP}.tracedjobs.traced", x=2, job_id="w1")
        enqueue(engine, f"{APP}.tracedjobs.traced_fail", job_id="w2")
    sent = _by_name(spans.get_finished_spans())
    out = tmp_path / "spans.jsonl"
    os.environ["TRACED_SPANS"] = str(out)  # the worker inherits engine.env() from os.environ
    try:
        engine.run_worker()
    finally:
        del os.environ["TRACED_SPANS"]
    ran = {s["name"]: s for s in map(json.loads, out.read_text().splitlines())}
    trace_id = request.get_span_context().trace_id
    ok, bad = ran[f"execute {APP}.tracedjobs.traced"], ran[f"execute {APP}.tracedjobs.traced_fail"]
    assert ok["trace_id"] == bad["trace_id"] == trace_id and ok["kind"] == "CONSUMER"
    assert ok["parent_id"] == sent[f"enqueue {APP}.tracedjobs.traced"].context.span_id
    assert bad["parent_id"] == sent[f"enqueue {APP}.tracedjobs.traced_fail"].context.span_id
    assert ok["attributes"]["jobbench.outcome"] == "finished" and ok["status"] == "UNSET"
    assert (bad["attributes"]["jobbench.outcome"], bad["status"]) == ("failed", "ERROR")
    assert ran["inside the job"]["parent_id"] == ok["span_id"]
