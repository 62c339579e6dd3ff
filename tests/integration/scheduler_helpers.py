"""Fixtures and helpers for the scheduler integration tests (SPEC section 5).

``sched`` is parametrised over the two brokers: a fresh bench in tmp_path with the app ``sapp``
installed on ``site1`` (time zone Asia/Kolkata, so a local/UTC mix-up shows). ``sapp`` defines
job functions that append a tab-separated line (site, tag, user, job id) to
``<bench>/marks.log``, and the doctypes "Process Payment Reconciliation" (a classmethod
``run_scheduled_event``) and "Static Reconciliation" (a staticmethod one), plus one function
per hook key in ``sapp.hookfuncs``. ``sched_sqlite`` is the same on SQLite only, for
tests that involve no broker. For Redis the bench's ``redis_queue`` is database 11 of the test
server with a unique ``bench_id``; the database is flushed before and after.

Test modules import the fixtures explicitly:
``from .scheduler_helpers import sched_fixture, sched_sqlite_fixture``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

import jobbench
from conftest import drop_bench_keys as drop_keys
from conftest import redis_db, release_bench, require_service  # tests/conftest.py
from jobbench.bench import Bench, init_bench
from jobbench.brokers.base import Broker, Retention
from jobbench.jobs.record import JobRecord, full_id

REDIS_SERVER = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_URL = f"{REDIS_SERVER}/{redis_db(11)}"
APP = "sapp"
SITE = "site1"
ZONE = "Asia/Kolkata"
JOB_TYPE = "Scheduled Job Type"
LOG = "Scheduled Job Log"
ALL_QUEUES = "short,default,long"

DOCTYPES = ["sapp.doctypes.ProcessPaymentReconciliation", "sapp.doctypes.StaticReconciliation"]

DOCTYPES_MODULE = """
from __future__ import annotations

from jobbench.model import Document


class ProcessPaymentReconciliation(Document):
    doctype = "Process Payment Reconciliation"
    naming = "hash"

    title: str | None = None

    @classmethod
    def run_scheduled_event(cls, event):
        from sapp.jobs import mark

        mark(f"reconcile:{cls.__name__}:{event.name}")
        return event.name


class StaticReconciliation(Document):
    doctype = "Static Reconciliation"
    naming = "hash"

    title: str | None = None

    @staticmethod
    def run_scheduled_event(event):
        from sapp.jobs import mark

        mark(f"static:{event.scheduled_against}:{event.name}")
"""

JOBS_MODULE = '''
"""Job functions the scheduler tests schedule; each leaves a line in <bench>/marks.log."""

from __future__ import annotations

import os
import time
from pathlib import Path

import jobbench


def mark(tag):
    path = Path(jobbench.local.bench.path) / "marks.log"
    job_id = getattr(jobbench.job, "id", None) if jobbench.local.job is not None else None
    with open(path, "a") as f:
        f.write(f"{jobbench.local.site}\\t{tag}\\t{jobbench.session.user}\\t{job_id}\\n")
    return tag


def ping():
    return mark("ping")


def pong():
    return mark("pong")


def tick_tock():
    return mark("tick_tock")


def event_method():
    return mark("event_method")


def see_own_log():
    """Report the statuses of the Scheduled Job Logs another connection sees right now."""
    with jobbench.site_context(jobbench.local.site, jobbench.local.bench.path):
        rows = jobbench.get_all("Scheduled Job Log", fields=["status"])
    return mark("log:" + ",".join(r.status for r in rows))


def write_doc():
    """Write a document (committed by the run), then report what another connection sees."""
    jobbench.new_doc("Process Payment Reconciliation", title="from a scheduled run").insert()
    return see_own_log()


def write_then_fail():
    jobbench.new_doc("Process Payment Reconciliation", title="written").insert()
    mark("write_then_fail")
    raise RuntimeError("failed after writing")


def sleepy(seconds=30):
    """Sleep in small steps (so a soft timeout or a stop lands in Python code)."""
    mark("sleepy")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)


def swallow(seconds=30):
    """Catch every exception, BaseException included: only a hard stop ends it."""
    mark("swallow")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except BaseException:
            pass


def boom():
    mark("boom")
    raise RuntimeError("boom from a scheduled job")


def exit_hard():
    mark("exit_hard")
    os._exit(3)
'''

# One function per hook key, so every synced job type has a method of its own.
HOOK_FUNCS = [
    "every",
    "hourly_job",
    "daily_job",
    "weekly_job",
    "monthly_job",
    "yearly_job",
    "annual_job",
    "hourly_long_job",
    "daily_long_job",
    "weekly_long_job",
    "monthly_long_job",
    "hourly_maintenance_job",
    "daily_maintenance_job",
    "cron_job",
    "cron_long_job",
    "other_job",
]


def _hook_funcs_module() -> str:
    return "".join(f"\n\ndef {n}():\n    return {n!r}\n" for n in HOOK_FUNCS)


def hooks_source(events: dict[str, Any] | None) -> str:
    text = f"doctypes = {DOCTYPES!r}\n"
    if events is not None:
        text += f"scheduler_events = {events!r}\n"
    return text


def write_sched_app(apps_dir: Path, events: dict[str, Any] | None = None) -> Path:
    pkg = apps_dir / APP
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(hooks_source(events))
    (pkg / "doctypes.py").write_text(textwrap.dedent(DOCTYPES_MODULE))
    (pkg / "jobs.py").write_text(JOBS_MODULE)
    (pkg / "hookfuncs.py").write_text(_hook_funcs_module())
    return pkg


def forget_app() -> None:
    for mod in [m for m in sys.modules if m == APP or m.startswith(APP + ".")]:
        del sys.modules[mod]
    importlib.invalidate_caches()


def deadline_loop(timeout: float, what: str, pause: float = 0.02) -> Iterator[None]:
    end = time.monotonic() + timeout
    while True:
        yield
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)


def wait_until(check: Callable[[], Any], timeout: float, what: str, pause: float = 0.02) -> Any:
    """Poll ``check()`` until it returns something truthy; return that."""
    for _ in deadline_loop(timeout, what, pause):
        value = check()
        if value:
            return value
    raise AssertionError("unreachable")


@dataclass
class Sched:
    """A bench with ``site1`` running ``sapp``, on one broker kind."""

    kind: str
    bench: Bench
    tmp: Path

    @property
    def path(self) -> str:
        return str(self.bench.path)

    @property
    def app_dir(self) -> Path:
        return self.bench.path / "apps" / APP

    def ctx(self, site: str = SITE, user: str | None = None) -> Any:
        return jobbench.site_context(site, self.bench.path, user=user)

    def broker(self) -> Broker:
        from jobbench.brokers.factory import get_broker

        return get_broker(self.bench, self.bench.common_config())

    def keep(self) -> Retention:
        from jobbench.brokers.factory import retention

        return retention(self.bench.common_config())

    def set_common(self, **values: Any) -> None:
        self.bench.update_common_config(values)

    def set_site(self, site: str = SITE, **values: Any) -> None:
        self.bench.update_site_config(site, values)

    # -- hooks and migrate ----------------------------------------------------------------------
    def write_hooks(self, events: dict[str, Any] | None) -> None:
        (self.app_dir / "hooks.py").write_text(hooks_source(events))
        forget_app()

    def migrate(self, site: str = SITE) -> Any:
        from jobbench.sites import migrate_site

        return migrate_site(self.bench, site).scheduler

    # -- documents ------------------------------------------------------------------------------
    def new_job_type(self, site: str = SITE, **fields: Any) -> str:
        """Insert and commit a Scheduled Job Type; return its name."""
        with self.ctx(site):
            doc = jobbench.new_doc(JOB_TYPE, **fields)
            doc.insert()
            jobbench.db.commit()
            return str(doc.name)

    def job_type(self, name: str, site: str = SITE) -> dict[str, Any]:
        with self.ctx(site):
            return dict(jobbench.get_doc(JOB_TYPE, name).as_dict())

    def job_types(self, site: str = SITE) -> list[dict[str, Any]]:
        with self.ctx(site):
            rows = jobbench.get_all(JOB_TYPE, fields=["*"], order_by="creation asc")
            return [dict(r) for r in rows]

    def set_job_type(self, name: str, site: str = SITE, **values: Any) -> None:
        """Change a job type through the document (validated, next_execution re-derived)."""
        with self.ctx(site):
            doc = jobbench.get_doc(JOB_TYPE, name)
            doc.update(values)
            doc.save()
            jobbench.db.commit()

    def logs(self, job_type: str | None = None, site: str = SITE) -> list[dict[str, Any]]:
        filters = {"scheduled_job_type": job_type} if job_type else None
        with self.ctx(site):
            rows = jobbench.get_all(LOG, filters=filters, fields=["*"], order_by="creation asc")
            return [dict(r) for r in rows]

    # -- clock ----------------------------------------------------------------------------------
    def epoch(self, local_time: dt.datetime) -> float:
        """Epoch seconds of a naive local time of the site's zone."""
        return local_time.replace(tzinfo=ZoneInfo(ZONE)).timestamp()

    def local(self, epoch: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(epoch, ZoneInfo(ZONE)).replace(tzinfo=None)

    # -- jobs -----------------------------------------------------------------------------------
    def record(self, name: str, site: str = SITE) -> JobRecord | None:
        """The broker record of job type ``name``'s run (id ``scheduled_job::<name>``)."""
        return self.broker().get(full_id(site, f"scheduled_job::{name}"))

    def finish_pending(self, worker: str = "fake-worker") -> int:
        """Claim every queued job and mark it finished, as a worker would (no execution)."""
        broker, keep, n = self.broker(), self.keep(), 0
        while (record := broker.claim(ALL_QUEUES.split(","), worker)) is not None:
            assert broker.finish(record.id, worker, None, keep)
            n += 1
        return n

    def marks(self) -> list[list[str]]:
        path = self.bench.path / "marks.log"
        if not path.exists():
            return []
        return [line.split("\t") for line in path.read_text().splitlines()]

    # -- processes ------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBBENCH_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def run_worker(self, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A burst worker on every queue, in a subprocess, to completion (exit code 0)."""
        cmd = [sys.executable, "-m", "jobbench", "--bench", self.path, "worker", "--burst"]
        cmd += ["--queue", ALL_QUEUES]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=self.env(), check=False
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"burst worker did not finish within {timeout} s: {exc.stdout!r}")
        assert done.returncode == 0, f"worker exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done

    def cli(self, *args: str, site: str | None = SITE) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "jobbench", "--bench", self.path]
        cmd += (["--site", site] if site else []) + list(args)
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, env=self.env(), check=False
        )


def drop_bench_keys(bench_id: str) -> None:
    """Delete one bench's keys from the test Redis database (conftest.drop_bench_keys)."""
    drop_keys(REDIS_URL, bench_id)


@contextlib.contextmanager
def broker_bench(
    kind: str, root: Path, write_apps: Callable[[Path], object], forget: Callable[[], None]
) -> Iterator[Bench]:
    """A new bench at ``root`` whose apps ``write_apps(apps_dir)`` writes, on the SQLite
    broker or (``kind="redis"``) on database 11 of the test Redis with a bench_id of its own.
    Afterwards: the bench's broker and engines are released, ``forget()`` drops the apps'
    modules, the apps folder leaves sys.path and the bench's Redis keys are deleted."""
    bench_id = f"{root.name}-{uuid.uuid4().hex[:10]}"
    if kind == "redis":
        parts = urlsplit(REDIS_SERVER)
        require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
        importlib.import_module("jobbench.brokers.redis")  # must exist: an error, not a skip
    bench = init_bench(root)
    write_apps(bench.path / "apps")
    forget()
    if kind == "redis":
        bench.update_common_config({"redis_queue": REDIS_URL, "bench_id": bench_id})
    try:
        yield bench
    finally:
        release_bench(bench)
        forget()
        apps_dir = str(bench.path / "apps")
        while apps_dir in sys.path:
            sys.path.remove(apps_dir)
        if kind == "redis":
            drop_bench_keys(bench_id)


def make_sched(kind: str, tmp_path: Path) -> Iterator[Sched]:
    from jobbench.sites import new_site

    with broker_bench(kind, tmp_path / "sb", write_sched_app, forget_app) as bench:
        new_site(bench, SITE, apps=[APP])
        bench.update_site_config(SITE, {"time_zone": ZONE})
        yield Sched(kind, bench, tmp_path)


@pytest.fixture(name="sched", params=["sqlite", "redis"])
def sched_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sched]:
    """A fresh bench with site1 running sapp, on the SQLite or the Redis broker."""
    yield from make_sched(request.param, tmp_path)


@pytest.fixture(name="sched_sqlite")
def sched_sqlite_fixture(tmp_path: Path) -> Iterator[Sched]:
    """The same bench on the SQLite broker only (for tests that involve no broker)."""
    yield from make_sched("sqlite", tmp_path)
