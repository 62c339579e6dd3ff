"""Optional OpenTelemetry tracing (``pip install 'jobbench[otel]'``): a span per enqueue and
one per execution, in one trace.

* **Enqueue** (``RecordBuilder.record``, so ``enqueue``, ``enqueue_many`` and the scheduler
  alike): a ``PRODUCER`` span ``enqueue <method>``, a child of whatever span is current (a web
  request's), whose W3C trace context (``traceparent``, ``tracestate``) is written into the job
  record's ``trace_context`` field (JSON). The span covers building the record; the broker
  write follows it.
* **Execution** (``execute_job``, in the worker's executor): a ``CONSUMER`` span ``execute
  <method>``, its parent the context read from the record, current while the job runs (spans
  the job code starts are its children), ended with the job's outcome.

Attributes: ``messaging.system`` = ``jobbench``, ``messaging.destination.name`` (the queue),
``messaging.message.id`` (the stored job id), ``jobbench.method``, ``jobbench.site`` and, on
the execution span, ``jobbench.outcome`` (a failure also sets the span's status to ERROR).

Zero cost when unused: nothing here imports OpenTelemetry unless the process already did
(``opentelemetry.trace`` in ``sys.modules``: an app that configures a tracer provider has
imported it) and a real tracer provider is set (not the API's default proxy). The check is a
dictionary lookup per job otherwise.

``trace_context`` is not signed (jobbench.jobs.trust): it decides nothing about what runs or
as whom; it only links the execution span to a trace. A forged or malformed value gives at
worst a span under someone else's trace id, and a value that does not parse starts a new trace.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobbench.jobs.outcome import Outcome
    from jobbench.jobs.record import JobRecord

TRACER = "jobbench"
MAX_CONTEXT = 1024  # characters of trace context read from a record (anything longer: ignored)


# Whether OTEL_PYTHON_TRACER_PROVIDER names a provider for the API to load on first use: read
# once, as the API itself only acts on it once.
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def _api() -> Any | None:
    """The ``opentelemetry.trace`` module when a real tracer provider is configured.

    redis-py 8 imports ``opentelemetry.trace`` wherever the API is installed, so the module
    is usually there without any tracing: the API's own global (None until a provider is set)
    then answers, without ``get_tracer_provider``'s environment lookup on every job (a few
    percent of a no-op job). The public call stays the fallback."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    if getattr(trace, "_TRACER_PROVIDER", True) is None and not _PROVIDER_FROM_ENV:
        return None  # no provider set, none to load: the API would hand out its proxy
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return trace


def _attributes(record: JobRecord) -> dict[str, Any]:
    return {
        "messaging.system": "jobbench",
        "messaging.destination.name": record.queue,
        "messaging.message.id": record.id,
        "jobbench.method": record.method,
        "jobbench.site": record.site,
    }


def enqueue_span(record: JobRecord) -> None:
    """Record a PRODUCER span for this enqueue and put its context into the record."""
    trace = _api()
    if trace is None:
        return
    from opentelemetry import propagate

    tracer = trace.get_tracer(TRACER)
    kind = trace.SpanKind.PRODUCER
    with tracer.start_as_current_span(f"enqueue {record.method}", kind=kind) as span:
        span.set_attributes(_attributes(record))
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    record.trace_context = json.dumps(carrier) if carrier else None


def _parent(record: JobRecord) -> Any:
    """The context the record carries (None: none, or unreadable)."""
    text = record.trace_context
    if not text or len(text) > MAX_CONTEXT:
        return None
    try:
        carrier = json.loads(text)
    except ValueError:
        return None
    if not isinstance(carrier, dict) or not all(isinstance(v, str) for v in carrier.values()):
        return None
    from opentelemetry import propagate

    return propagate.extract(carrier)


@contextlib.contextmanager
def execution_span(record: JobRecord) -> Iterator[Callable[[Outcome], None]]:
    """A CONSUMER span that continues the record's trace, current for the block; the block
    calls what it is given with the job's outcome (without a configured tracer provider:
    no span, and that call does nothing). A context manager rather than a wrapper, so the
    job's steps (a generator that may pause at an ``await``) run inside it."""
    trace = _api()
    if trace is None:
        yield _ignore
        return
    tracer = trace.get_tracer(TRACER)
    name, kind = f"execute {record.method}", trace.SpanKind.CONSUMER
    with tracer.start_as_current_span(name, context=_parent(record), kind=kind) as span:
        span.set_attributes(_attributes(record))

        def note(outcome: Outcome) -> None:
            span.set_attribute("jobbench.outcome", outcome.status)
            if outcome.status == "failed":
                last = (outcome.exc_info or "failed").strip().rsplit("\n", 1)[-1]
                span.set_status(trace.Status(trace.StatusCode.ERROR, last[:500]))

        yield note


def _ignore(_outcome: Outcome) -> None:
    return None
