"""Frappe's enqueue, exactly: positional calls in Frappe's parameter order, ``event``,
``timeout=0``, RQ-style and jobbench-style callbacks, ``before_job`` / ``after_job`` hook
arguments, in-place retries (before_job again, the failed attempt's after_job callbacks
dropped, the user kept), Frappe's ``get_jobs`` shape, ``purge-jobs --event`` and
``jobbench.utils.background_jobs``; on both brokers with real workers. Effects are recorded
by the jobs themselves in a JSON-lines file, so a job marked finished whose body never ran
fails the test.

Also, on real PostgreSQL and MariaDB: statement timeouts become ``QueryTimeoutError``, lock
waits ``LockWaitTimeoutError`` (a ``QueryTimeoutError``), and a job hitting a statement
timeout is retried in place."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jobbench
from jobbench.bench import Bench
from jobbench.brokers.sqlite import SQLiteBroker
from jobbench.jobs.record import JobRecord, full_id
from jobbench.sites import install_app

from .jobs_helpers import (
    Engine,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
)

FAPP = "fapp"

FAPP_HOOKS = """
before_job = ["fapp.jobs.before_job", "fapp.jobs.before_job_any"]
after_job = ["fapp.jobs.after_job", "fapp.jobs.after_job_any"]
"""

FAPP_JOBS = '''
"""Jobs and hooks written the way Frappe code writes them; each records what it saw."""

import json
from pathlib import Path

import jobbench

LOG = {log!r}


def note(**entry):
    with open(LOG, "a") as fh:
        fh.write(json.dumps(entry, sort_keys=True, default=repr) + "\\n")


# -- hooks: named exactly as Frappe passes them; the *_any twins record every keyword -------
def before_job(method, kwargs, transaction_type):
    note(what="before_job", method=method, kwargs=kwargs, transaction_type=transaction_type,
         user=jobbench.session.user)


def before_job_any(**kwargs):
    note(what="before_job_any", keys=sorted(kwargs))


def after_job(method, kwargs, result):
    note(what="after_job", method=method, kwargs=kwargs, result=result)


def after_job_any(**kwargs):
    note(what="after_job_any", keys=sorted(kwargs))


# -- job bodies --------------------------------------------------------------------------------
def record_args(**kwargs):
    job = jobbench.job
    note(what="body", method="record_args", kwargs=kwargs, queue=job.queue,
         timeout=job.record.timeout, job_name=job.job_name, event=job.event)
    return "recorded"


def succeed(value):
    note(what="body", method="succeed", value=value)
    return value * 2


def fail(message):
    note(what="body", method="fail", message=message)
    raise ValueError(message)


def deadlock_once(counter, subject):
    """Attempt 1 writes, registers an after_job callback, changes the user and dies as a
    deadlock victim; attempt 2 does the same work and succeeds."""
    path = Path(counter)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    jobbench.job.after_job.add(lambda: note(what="after_job_callback", attempt=attempt))
    jobbench.new_doc("Task", subject=f"{{subject}}-{{attempt}}").insert()
    user = jobbench.session.user
    if attempt == 1:
        jobbench.set_user("Guest")
        raise jobbench.QueryDeadlockError("deadlock (simulated): chosen as the victim")
    note(what="body", method="deadlock_once", attempt=attempt, user=user)
    return attempt


def enqueue_with_event(event, count):
    for n in range(int(count)):
        jobbench.enqueue("fapp.jobs.succeed", event=event, value=n)


# -- callbacks: jobbench's (job, value) and RQ's signatures, as Frappe code has them -----------
def ok_ours(job, result):
    note(what="ok_ours", job_id=job.id, result=result, user=job.user)


def fail_ours(job, exc):
    note(what="fail_ours", job_id=job.id, exc=type(exc).__name__, message=str(exc))


def ok_rq(job, connection, result, *args, **kwargs):
    note(what="ok_rq", job_id=job.id, result=result, connection=_conn(connection))


def fail_rq(job, connection, type, value, traceback):
    note(what="fail_rq", job_id=job.id, type=type.__name__, value=str(value),
         traceback=traceback.tb_frame is not None, connection=_conn(connection))


def _conn(connection):
    if connection is None:
        return None
    return [connection.__class__.__name__, connection.ping()]
'''


@pytest.fixture
def fapp(engine: Engine) -> Iterator[Path]:
    """The Frappe-style app installed on site1; yields the log its jobs and hooks write."""
    log = Path(engine.file("fapp.log"))
    forget_fapp()
    pkg = engine.bench.path / "apps" / FAPP
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(FAPP_HOOKS)
    (pkg / "jobs.py").write_text(textwrap.dedent(FAPP_JOBS).format(log=str(log)))
    install_app(engine.bench, "site1", FAPP)
    yield log
    forget_fapp()


def forget_fapp() -> None:
    for name in [m for m in sys.modules if m == FAPP or m.startswith(FAPP + ".")]:
        del sys.modules[name]


def entries(log: Path, what: str | None = None) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    found = [json.loads(line) for line in log.read_text().splitlines()]
    return [e for e in found if what is None or e["what"] == what]


# -- the signature ---------------------------------------------------------------------------------
def test_positional_call_in_frappes_order_lands_as_frappe_means_it(
    engine: Engine, fapp: Path
) -> None:
    with engine.ctx() as local:
        job = jobbench.enqueue(
            "fapp.jobs.record_args", "short", 100, "ev", True, "name", False, False, x=1
        )
        local.db.commit()
    record = engine.record(job.id)
    assert record is not None
    assert (record.queue, record.timeout, record.event, record.job_name) == (
        "short",
        100,
        "ev",
        "name",
    )
    assert job.kwargs == {"x": 1}  # event, job_name and the flags are not arguments

    engine.run_worker("short")

    (body,) = entries(fapp, "body")
    assert body == {
        "what": "body",
        "method": "record_args",
        "kwargs": {"x": 1},
        "queue": "short",
        "timeout": 100,
        "job_name": "name",
        "event": "ev",
    }


def test_timeout_zero_or_none_is_the_queues_default_and_minus_one_is_none(
    engine: Engine, fapp: Path
) -> None:
    engine.set_common(workers={"bulk": {"timeout": 777}})
    with engine.ctx():
        zero_long = jobbench.enqueue("fapp.jobs.record_args", "long", 0, tag="long0")
        zero_short = jobbench.enqueue("fapp.jobs.record_args", queue="short", timeout=0, tag="s0")
        none_bulk = jobbench.enqueue("fapp.jobs.record_args", queue="bulk", tag="bulk")
        unlimited = jobbench.enqueue("fapp.jobs.record_args", timeout=-1, tag="none")
        with pytest.raises(jobbench.JobError, match="timeout"):
            jobbench.enqueue("fapp.jobs.record_args", timeout=-5)
    assert [j.timeout for j in (zero_long, zero_short, none_bulk, unlimited)] == [
        1500,
        300,
        777,
        -1,
    ]

    engine.run_worker("short,default,long,bulk")

    ran = {e["kwargs"]["tag"]: e["timeout"] for e in entries(fapp, "body")}
    assert ran == {"long0": 1500, "s0": 300, "bulk": 777, "none": -1}


def test_legacy_async_false_and_now_run_inline(engine: Engine, fapp: Path) -> None:
    with engine.ctx():
        assert jobbench.enqueue("fapp.jobs.succeed", **{"async": False}, value=4) == 8
        assert jobbench.enqueue("fapp.jobs.succeed", now=True, value=5) == 10
        assert jobbench.list_jobs() == []
    assert [e["value"] for e in entries(fapp, "body")] == [4, 5]


def test_at_front_when_starved_jumps_the_queue_only_when_it_is_long(engine: Engine) -> None:
    with engine.ctx():
        for n in range(16):
            jobbench.enqueue(jobs_path("noop"), queue="short", job_id=f"q{n}")
        not_starved = jobbench.enqueue(jobs_path("noop"), queue="short", at_front_when_starved=True)
        assert not_starved.get_position() == 16  # 16 ahead of it: not more than the threshold
        starved = jobbench.enqueue(jobs_path("noop"), queue="short", at_front_when_starved=True)
        assert starved.get_position() == 0  # 17 were waiting
        assert starved.kwargs == {}


# -- callbacks -------------------------------------------------------------------------------------
def test_rq_style_and_jobbench_style_callbacks_both_run_with_the_right_values(
    engine: Engine, fapp: Path
) -> None:
    with engine.ctx():
        for style in ("ours", "rq"):
            jobbench.enqueue(
                "fapp.jobs.succeed",
                job_id=f"ok-{style}",
                on_success=f"fapp.jobs.ok_{style}",
                on_failure=f"fapp.jobs.fail_{style}",
                value=21,
            )
            jobbench.enqueue(
                "fapp.jobs.fail",
                job_id=f"bad-{style}",
                on_success=f"fapp.jobs.ok_{style}",
                on_failure=f"fapp.jobs.fail_{style}",
                message=f"boom-{style}",
            )

    engine.run_worker("default")

    connection = ["Redis", True] if engine.kind == "redis" else None
    assert entries(fapp, "ok_ours") == [
        {"what": "ok_ours", "job_id": "ok-ours", "result": 42, "user": "Administrator"}
    ]
    assert entries(fapp, "fail_ours") == [
        {"what": "fail_ours", "job_id": "bad-ours", "exc": "ValueError", "message": "boom-ours"}
    ]
    assert entries(fapp, "ok_rq") == [
        {"what": "ok_rq", "job_id": "ok-rq", "result": 42, "connection": connection}
    ]
    assert entries(fapp, "fail_rq") == [
        {
            "what": "fail_rq",
            "job_id": "bad-rq",
            "type": "ValueError",
            "value": "boom-rq",
            "traceback": True,
            "connection": connection,
        }
    ]
    assert len(entries(fapp, "body")) == 4  # every body ran once
    with engine.ctx():
        errors = jobbench.get_all("Error Log", fields=["method"], pluck="method")
    assert not any("callback" in title for title in errors), errors  # none of them raised


# -- hooks -----------------------------------------------------------------------------------------
def test_before_and_after_job_hooks_get_frappes_arguments_on_success_and_failure(
    engine: Engine, fapp: Path
) -> None:
    with engine.ctx():
        jobbench.enqueue("fapp.jobs.succeed", job_id="good", value=3)
    engine.run_worker("default")
    with engine.ctx():
        jobbench.enqueue("fapp.jobs.fail", job_id="bad", message="no")
    engine.run_worker("default")

    seen = [e for e in entries(fapp) if e["what"] != "body"]
    assert seen == [
        {
            "what": "before_job",
            "method": "fapp.jobs.succeed",
            "kwargs": {"value": 3},
            "transaction_type": "job",
            "user": "Administrator",
        },
        {"what": "before_job_any", "keys": ["kwargs", "method", "transaction_type"]},
        {"what": "after_job", "method": "fapp.jobs.succeed", "kwargs": {"value": 3}, "result": 6},
        {"what": "after_job_any", "keys": ["kwargs", "method", "result"]},
        {
            "what": "before_job",
            "method": "fapp.jobs.fail",
            "kwargs": {"message": "no"},
            "transaction_type": "job",
            "user": "Administrator",
        },
        {"what": "before_job_any", "keys": ["kwargs", "method", "transaction_type"]},
        {
            "what": "after_job",
            "method": "fapp.jobs.fail",
            "kwargs": {"message": "no"},
            "result": None,
        },
        {"what": "after_job_any", "keys": ["kwargs", "method", "result"]},
    ]
    assert [e["method"] for e in entries(fapp, "body")] == ["succeed", "fail"]


def test_in_place_retry_reruns_before_job_and_drops_the_failed_attempts_callbacks(
    engine: Engine, fapp: Path
) -> None:
    counter = engine.file("attempts.txt")
    job = enqueue(
        engine,
        "fapp.jobs.deadlock_once",
        user="someone@example.com",
        job_id="victim",
        counter=counter,
        subject="retried",
    )

    engine.run_worker("default")

    assert job.refresh().result == 2
    befores = entries(fapp, "before_job")
    assert [e["user"] for e in befores] == ["someone@example.com"] * 2  # once per attempt
    assert entries(fapp, "after_job_callback") == [{"what": "after_job_callback", "attempt": 2}]
    assert entries(fapp, "body") == [
        {"what": "body", "method": "deadlock_once", "attempt": 2, "user": "someone@example.com"}
    ]
    (after,) = entries(fapp, "after_job")
    assert after["result"] == 2
    with engine.ctx():  # the failed attempt's write was rolled back, the second one committed
        tasks = jobbench.get_all("Task", fields=["subject", "owner"])
    assert [(t.subject, t.owner) for t in tasks] == [("retried-2", "someone@example.com")]


# -- get_jobs -------------------------------------------------------------------------------------
def test_get_jobs_returns_frappes_site_to_values_shape(engine: Engine) -> None:
    noop, add = jobs_path("noop"), jobs_path("add")
    with engine.ctx():
        jobbench.enqueue(noop, queue="long", job_name="l1", job_id="l1")
        jobbench.enqueue(add, queue="short", job_name="s1", a=1, b=2)
        jobbench.enqueue(noop, job_name="d1", job_type="Sync Orders", job_id="d1")
        jobbench.enqueue(noop, job_name="d2", job_id="d2")
        jobbench.enqueue(noop, queue="long", job_name="l2", job_id="l2")
    enqueue(engine, add, site="site2", job_name="other", a=0, b=0)
    broker = engine.broker()
    running = broker.claim(["long"], "test-worker")
    assert running is not None and running.job_id == "l1"
    done = broker.claim(["default"], "test-worker")
    assert done is not None and done.job_id == "d1"
    from jobbench.brokers.factory import retention

    keep = retention(engine.bench.common_config())
    assert broker.finish(done.id, "test-worker", None, keep)  # d1 finished: not pending

    with engine.ctx():
        assert jobbench.get_jobs() == {
            "site1": [add, noop, noop, noop],  # short, default, long (queued, then started)
            "site2": [add],
        }
        assert jobbench.get_jobs(site="site1", key="job_name") == {
            "site1": ["s1", "d2", "l2", "l1"]
        }
        assert jobbench.get_jobs(key="job_id")["site1"][1:] == ["d2", "l2", "l1"]
        assert jobbench.get_jobs(site="site1", queue="long", key="job_name") == {
            "site1": ["l2", "l1"]
        }
        assert jobbench.get_jobs(site="site1", key="b") == {"site1": [2]}  # a kwarg
        assert jobbench.get_jobs(key="user")["site2"] == ["Administrator"]
        assert jobbench.get_jobs(site="site3") == {}
        with pytest.raises(jobbench.InvalidQueue):
            jobbench.get_jobs(queue="nope")
    broker.finish(running.id, "test-worker", None, keep)
    with engine.ctx():
        from jobbench.utils.background_jobs import get_jobs

        assert get_jobs(site="site1", queue="long", key="job_name") == {"site1": ["l2"]}
        assert get_jobs(key="job_type") == {}  # its job finished


def test_get_jobs_key_job_type_lists_pending_scheduled_runs(engine: Engine) -> None:
    with engine.ctx():
        jobbench.enqueue(jobs_path("noop"), job_type="Hourly Sync")
        jobbench.enqueue(jobs_path("noop"))
        assert jobbench.get_jobs(key="job_type") == {"site1": ["Hourly Sync"]}
        assert jobbench.get_jobs(key="kwargs") == {"site1": [{"job_type": "Hourly Sync"}, {}]}


# -- purge-jobs --event ----------------------------------------------------------------------------
def test_purge_jobs_event_deletes_the_jobs_enqueued_with_that_event(
    engine: Engine, fapp: Path
) -> None:
    done = engine.cli(
        "execute", "fapp.jobs.enqueue_with_event", "--kwargs", '{"event": "sync", "count": 2}'
    )
    assert done.returncode == 0, done.stderr
    with engine.ctx():
        jobbench.enqueue("fapp.jobs.succeed", event="other", value=7)
        jobbench.enqueue("fapp.jobs.succeed", value=8)
        assert sorted(v for v in jobbench.get_jobs(key="event")["site1"] if v) == [
            "other",
            "sync",
            "sync",
        ]

    out = engine.cli("purge-jobs", "--event", "sync")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Purged 2 job(s) of event sync (site1)"
    unknown = engine.cli("purge-jobs", "--event", "fortnightly")
    assert unknown.returncode == 0, unknown.stderr
    assert unknown.stdout.strip() == "Purged 0 job(s) of event fortnightly (site1)"
    assert "not a scheduler event" in unknown.stderr

    engine.run_worker("default")
    assert sorted(e["value"] for e in entries(fapp, "body")) == [7, 8]


def test_an_older_sqlite_queue_file_gets_the_event_column(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, site, queue, method, payload, serializer, "
        "user, timeout, job_name, status, enqueued_at, started_at, ended_at, worker, result, "
        "exc_info, attempts, retries_left, retry_count, retry_at, progress, stage, task_id, "
        "on_success, on_failure, stop_requested, pos INTEGER, expires_at REAL)"
    )
    old.execute(
        "INSERT INTO jobs (id, site, queue, method, payload, status, timeout, attempts, pos) "
        "VALUES ('s::old', 's', 'default', 'm.f', '{}', 'queued', 300, 0, 0)"
    )
    old.commit()
    old.close()

    broker = SQLiteBroker(path)
    try:
        stored = broker.get("s::old")
        assert stored is not None and stored.event is None and stored.method == "m.f"
        new = JobRecord(full_id("s", "new"), "s", "default", "m.g", b"{}", event="nightly")
        assert broker.enqueue(new)
        again = broker.get(new.id)
        assert again is not None and again.event == "nightly"
        SQLiteBroker(path).close()  # opening it again adds nothing
    finally:
        broker.close()


# -- jobbench.utils.background_jobs ---------------------------------------------------------------
def test_background_jobs_module_offers_frappes_functions(engine: Engine, fapp: Path) -> None:
    from jobbench.utils.background_jobs import (
        create_job_id,
        enqueue,
        enqueue_doc,
        get_job,
        get_job_status,
        get_jobs,
        is_job_enqueued,
    )

    assert enqueue is jobbench.enqueue and get_jobs is jobbench.get_jobs
    assert jobbench.utils.background_jobs.enqueue_doc is enqueue_doc
    with engine.ctx() as local:
        job = enqueue("fapp.jobs.succeed", "short", job_id="via-utils", value=1)
        doc = jobbench.new_doc("Task", subject="for enqueue_doc")
        doc.insert()
        local.db.commit()
        by_doc = enqueue_doc("Task", doc.name, "mark", status="Done", job_id="doc-job")
        run_flat = enqueue(
            "jobbench.utils.background_jobs.run_doc_method",
            doctype="Task",
            name=doc.name,
            doc_method="mark",
            status="Flat",
        )
        assert create_job_id("via-utils") == "site1::via-utils" == job.record.id
        assert is_job_enqueued("via-utils") is True
        assert get_job_status("via-utils") == "queued"
        assert get_job("via-utils").queue == "short"
        assert (by_doc.queue, by_doc.timeout) == ("long", 4000)  # jobbench's enqueue_doc defaults
    engine.run_worker()
    with engine.ctx():
        assert get_job_status("via-utils") == "finished" and not is_job_enqueued("via-utils")
        assert get_job("doc-job").result == "for enqueue_doc"
        assert run_flat.refresh().result == "for enqueue_doc"
        assert jobbench.db.get_value("Task", doc.name, "status") == "Done"  # long ran last
    assert entries(fapp, "body") == [{"what": "body", "method": "succeed", "value": 1}]


def test_statement_timeout_in_a_job_is_retried_in_place(
    server_site: tuple[Bench, str], make_job_app: Any
) -> None:
    """A real statement timeout (PostgreSQL statement_timeout, MariaDB max_statement_time) on
    the first attempt: QueryTimeoutError, rolled back, retried in place; the second attempt
    commits."""
    from jobbench.brokers.factory import get_broker
    from jobbench.jobs import serializer
    from jobbench.jobs.execute import execute_job
    from jobbench.jobs.trust import sign

    bench, kind = server_site
    make_job_app(bench)
    payload = serializer.dumps({"kind": kind}, "json", "")
    record = JobRecord(full_id("site1", "slow"), "site1", "default", "slowapp.jobs.slow", payload)
    sign(record, str(bench.common_config().secret_key))  # as enqueue does
    outcome = execute_job(record, bench, get_broker(bench, bench.common_config()))
    assert outcome.status == "finished", outcome.exc_info
    assert serializer.loads(outcome.result or b"", "json", "") == [2, "QueryTimeoutError"]
    with jobbench.site_context("site1", bench.path):
        notes = jobbench.get_all("Note", pluck="name", order_by="name")
    assert notes == ["attempt-2"]


SLOW_JOBS = """
import jobbench

SEEN = []


def slow(kind):
    attempt = len(SEEN) + 1
    jobbench.new_doc("Note", title=f"attempt-{attempt}").insert()
    if attempt == 1:
        try:
            if kind == "postgres":
                jobbench.db.sql("SET LOCAL statement_timeout = 100")
                jobbench.db.sql("SELECT pg_sleep(3)")
            else:
                jobbench.db.sql("SET STATEMENT max_statement_time = 0.1 FOR SELECT SLEEP(3)")
        except jobbench.QueryTimeoutError as exc:
            SEEN.append(type(exc).__name__)
            raise
        raise AssertionError("the statement did not time out")
    return [attempt, SEEN[0]]
"""


@pytest.fixture
def make_job_app(make_app: Any) -> Any:
    def make(bench: Bench) -> None:
        make_app("slowapp", jobs=SLOW_JOBS)
        install_app(bench, "site1", "slowapp")  # a worker runs only the site's apps' code

    return make


@pytest.fixture(params=["postgres", "mariadb"])
def server_site(
    request: pytest.FixtureRequest, bench: Bench, fresh_server_db: Any
) -> Iterator[tuple[Bench, str]]:
    """Site ``site1`` (with tapp) on a fresh PostgreSQL or MariaDB database."""
    from conftest import release_bench
    from jobbench.sites import new_site

    new_site(bench, "site1", db_url=fresh_server_db(request.param))
    install_app(bench, "site1", "tapp")
    try:
        yield bench, request.param
    finally:
        release_bench(bench)
        for mod in [m for m in sys.modules if m == "tapp" or m.startswith("tapp.")]:
            del sys.modules[mod]


def test_statement_and_lock_wait_timeouts_are_query_timeout_errors(
    server_site: tuple[Bench, str],
) -> None:
    bench, kind = server_site
    with jobbench.site_context("site1", bench.path) as local:
        jobbench.new_doc("Note", title="locked").insert()
        local.db.commit()
        with pytest.raises(jobbench.QueryTimeoutError, match="statement timeout") as caught:
            if kind == "postgres":
                jobbench.db.sql("SET LOCAL statement_timeout = 100")
                jobbench.db.sql("SELECT pg_sleep(3)")
            else:
                jobbench.db.sql("SET STATEMENT max_statement_time = 0.1 FOR SELECT SLEEP(3)")
        assert not isinstance(caught.value, jobbench.LockWaitTimeoutError)
        local.db.rollback()

        jobbench.db.set_value("Note", "locked", "body", "holder")  # holds the row lock
        failure: list[BaseException] = []

        def wait_for_lock() -> None:
            with jobbench.site_context("site1", bench.path):
                try:
                    if kind == "postgres":
                        jobbench.db.sql("SET LOCAL lock_timeout = 200")
                    else:
                        jobbench.db.sql("SET SESSION innodb_lock_wait_timeout = 1")
                    jobbench.db.set_value("Note", "locked", "body", "waiter")
                except BaseException as exc:  # noqa: BLE001 - checked below
                    failure.append(exc)

        waiter = threading.Thread(target=wait_for_lock)
        waiter.start()
        waiter.join(30)
        local.db.rollback()
    (exc,) = failure
    assert isinstance(exc, jobbench.LockWaitTimeoutError), repr(exc)
    assert isinstance(exc, jobbench.QueryTimeoutError)


# -- without a broker ------------------------------------------------------------------------------
def test_enqueue_signature_is_frappes() -> None:
    import inspect

    params = inspect.signature(jobbench.enqueue).parameters
    positional = [n for n, p in params.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == [
        "method",
        "queue",
        "timeout",
        "event",
        "is_async",
        "job_name",
        "now",
        "enqueue_after_commit",
    ]
    keyword_only = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keyword_only[:6] == [
        "on_success",
        "on_failure",
        "at_front",
        "job_id",
        "deduplicate",
        "at_front_when_starved",
    ]
    assert {"track_job", "retry", "once_key"} <= set(keyword_only)


def test_callback_style_is_told_apart_by_signature() -> None:
    from jobbench.jobs.execute import _inspect_shape

    def ours(job, result): ...
    def ours_extra(job, result, extra=None): ...
    def rq_success(job, connection, result, *args, **kwargs): ...
    def rq_failure(job, connection, type, value, traceback): ...
    def anything(*args): ...

    styles = {f.__name__: _inspect_shape(f, f).rq_style for f in (ours, ours_extra, rq_success)}
    styles |= {f.__name__: _inspect_shape(f, f).rq_style for f in (rq_failure, anything)}
    assert styles == {
        "ours": False,
        "ours_extra": False,
        "rq_success": True,
        "rq_failure": True,
        "anything": True,
    }
    assert _inspect_shape(ours, ours).names == {"job", "result"}
    assert _inspect_shape(rq_success, rq_success).names is None  # **kwargs: everything


def test_background_jobs_constants_and_queue_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobbench.brokers.base import Retention
    from jobbench.brokers.factory import retention
    from jobbench.utils import background_jobs as bj

    assert bj.RQ_RESULTS_TTL == Retention().results_ttl == retention({}).results_ttl == 600
    assert bj.RQ_JOB_FAILURE_TTL == Retention().failure_ttl == retention({}).failure_ttl
    assert bj.RQ_FAILED_JOBS_LIMIT == Retention().failed_limit == retention({}).failed_limit

    conf: dict[str, Any] = {"workers": 8}
    monkeypatch.setattr(bj, "_conf", lambda: conf)
    assert bj.get_queues_timeout() == {"short": 300, "default": 300, "long": 1500}
    conf["workers"] = {"long": 999, "custom": {"timeout": 5000}, "bulk": {}}
    assert bj.get_queues_timeout() == {
        "short": 300,
        "default": 300,
        "long": 1500,
        "custom": 5000,
        "bulk": 300,
    }
    assert bj.get_queue_list() == ["short", "default", "long", "custom", "bulk"]
    assert bj.get_queue_list("custom") == ["custom"]
    assert bj.get_queue_list(["long", "short"]) == ["long", "short"]
    with pytest.raises(jobbench.InvalidQueue, match="nope"):
        bj.get_queue_list(["short", "nope"])
    bj.validate_queue("bulk")
    with pytest.raises(jobbench.InvalidQueue, match="short, long"):
        bj.validate_queue("default", ["short", "long"])
    assert set(bj.__all__) <= set(dir(bj))


def test_importing_background_jobs_loads_no_database_or_broker_code() -> None:
    import subprocess

    code = (
        "import sys\n"
        "import jobbench.utils.background_jobs as bj\n"
        "from jobbench.utils.background_jobs import RQ_RESULTS_TTL, get_queue_list\n"
        "heavy = [m for m in ('sqlalchemy', 'redis', 'jobbench.jobs.enqueue', "
        "'jobbench.context') if m in sys.modules]\n"
        "print(heavy)\n"
        "import jobbench\n"
        "print(jobbench.utils.background_jobs is bj)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "True"]
