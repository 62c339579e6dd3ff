"""Fixtures for the ports of Frappe's background-job and scheduler tests.

``fc`` is parametrised over the two brokers: a fresh bench in tmp_path whose ``site1`` (time
zone Asia/Kolkata) runs two apps, installed in this order:

- ``frappe``: a stub of Frappe itself. Its ``hooks.py`` holds Frappe's real
  ``scheduler_events`` (tests/data/real_scheduler_events/frappe.json, written by
  ``integration/real_apps.py``), so the synced Scheduled Job Types carry exactly the methods
  and frequencies Frappe's tests look up (``frappe.email.queue.flush`` is All, ...).
- ``compat``: the job functions the ports enqueue (in ``COMPAT_JOBS``) and a doctype ``Note``.

``fc_sqlite`` is the same bench on the SQLite broker only, for cases no broker is part of.
For Redis the bench uses database 11 of the test server under a unique ``bench_id``; its keys
are deleted afterwards (never FLUSHDB: other runs may share the database).

Workers and schedulers are real ``python -m jobbench ...`` processes; waits poll with a
deadline.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import jobbench
from integration.real_apps import forget_stub_apps, write_stub_app
from integration.scheduler_helpers import broker_bench
from jobbench.bench import Bench
from jobbench.brokers.base import Broker
from jobbench.inspect import Inspector
from jobbench.jobs.record import JobRecord, full_id

SITE = "site1"
ZONE = "Asia/Kolkata"
APP = "compat"
ALL_QUEUES = "short,default,long"
JOB_TYPE = "Scheduled Job Type"
LOG = "Scheduled Job Log"

COMPAT_HOOKS = 'doctypes = ["compat.doctypes.Note"]\n'

COMPAT_DOCTYPES = """
from __future__ import annotations

from jobbench.model import Document


class Note(Document):
    doctype = "Note"
    naming = "hash"

    title: str | None = None
"""

COMPAT_JOBS = '''
"""Jobs the Frappe ports enqueue or schedule. Each one that leaves a trace writes a line to a
file: a path it is given, or a file in the bench folder."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jobbench


def sample_job(fail=False, sleep=0):
    """The rq_job tests' job: fail on request, sleep on request, else return True."""
    if fail:
        raise ZeroDivisionError("asked to fail")
    if sleep:
        time.sleep(sleep)
    return True


def divide_by_zero():
    return 1 / 0


def ping():
    return "pong"


def sleep_ten():
    time.sleep(10)


def do_nothing():
    return None


def _bench_file(name):
    return Path(jobbench.local.bench.path) / name


def record_job_run():
    """A scheduled method that only says it ran (in <bench>/ran.log)."""
    with open(_bench_file("ran.log"), "a") as f:
        f.write(f"{jobbench.local.site}\\n")
    return "ran"


def _hook(name):
    line = {"hook": name, "at": time.time()}
    with open(_bench_file("hooks.log"), "a") as f:
        f.write(json.dumps(line) + "\\n")


def before_job(*args, **kwargs):
    _hook("before_job")


def after_job(*args, **kwargs):
    _hook("after_job")


def _attempt(counter):
    """Count this attempt in ``counter`` (one JSON line each); return its number."""
    path = Path(counter)
    n = len(path.read_text().splitlines()) + 1 if path.exists() else 1
    line = {"n": n, "at": time.time(), "user": jobbench.session.user}
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\\n")
    return n


def locked_once(counter):
    """Write a Note, then hit a deadlock on the first attempt only."""
    n = _attempt(counter)
    jobbench.new_doc("Note", title=f"attempt {n}").insert()
    if n == 1:
        raise jobbench.QueryDeadlockError("database is locked")
    return "completed"


def _append(path, text):
    with open(path, "a") as f:
        f.write(text + "\\n")


def locked_once_then_cleanup(counter, cleanup_log):
    """Deadlock on the first attempt; the next one registers an after_job callback."""
    n = _attempt(counter)
    if n == 1:
        raise jobbench.QueryDeadlockError("database is locked")
    jobbench.job.after_job.add(functools.partial(_append, cleanup_log, f"attempt {n}"))
    return "completed"


def locked_once_as_user(counter):
    """Deadlock on the first attempt; every attempt records the user it ran as."""
    n = _attempt(counter)
    if n == 1:
        raise jobbench.QueryDeadlockError("database is locked")
    return "completed"


def read_note(note):
    """A job given a Document: report what the worker sees of it."""
    return [type(note).__name__, note.doctype, note.name, note.title]
'''


@dataclass
class Proc:
    """A background process (a worker or a scheduler), its output in a log file."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal it and wait for its exit code (SIGKILL if it does not exit in time)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail(f"process {self.proc.pid} ignored signal {sig}:\n{self.output()}")
        return int(self.proc.returncode)


@dataclass
class Compat:
    """A bench with ``site1`` running the stub ``frappe`` and ``compat``, on one broker."""

    kind: str
    bench: Bench
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def path(self) -> str:
        return str(self.bench.path)

    def ctx(self, site: str = SITE, user: str | None = None) -> Any:
        return jobbench.site_context(site, self.bench.path, user=user)

    def broker(self) -> Broker:
        from jobbench.brokers.factory import get_broker

        return get_broker(self.bench, self.bench.common_config())

    def inspector(self) -> Inspector:
        return Inspector(self.bench)

    def queue_counts(self, queue: str) -> dict[str, int]:
        """Job counts by status of ``queue`` (RQ's registries of a queue)."""
        return next(q.counts for q in self.inspector().queues() if q.name == queue)

    def record(self, job_id: str, site: str = SITE) -> JobRecord | None:
        return self.broker().get(full_id(site, job_id))

    def set_common(self, **values: Any) -> None:
        self.bench.update_common_config(values)

    def set_compat_hooks(self, extra: str) -> None:
        """Add lines to compat's hooks.py (read afresh by every new worker process)."""
        (self.bench.path / "apps" / APP / "hooks.py").write_text(COMPAT_HOOKS + extra)
        forget_compat()

    # -- documents ------------------------------------------------------------------------
    def job_type_name(self, method: str) -> str:
        with self.ctx():
            names = jobbench.get_all(JOB_TYPE, filters={"method": method}, pluck="name")
        assert len(names) == 1, f"{method}: {names}"
        return str(names[0])

    def methods_of(self, names: list[str]) -> set[str]:
        with self.ctx():
            return {str(jobbench.db.get_value(JOB_TYPE, n, "method")) for n in names}

    # -- files ----------------------------------------------------------------------------
    def file(self, name: str) -> str:
        return str(self.tmp / name)

    def lines(self, path: str | Path) -> list[str]:
        path = Path(path)
        return path.read_text().splitlines() if path.exists() else []

    # -- processes ------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBBENCH_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def command(self, *args: str, site: str | None = None) -> list[str]:
        cmd = [sys.executable, "-m", "jobbench", "--bench", self.path]
        return cmd + (["--site", site] if site else []) + list(args)

    def cli(
        self, *args: str, site: str | None = SITE, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args, site=site),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )

    def run_worker(
        self, queues: str = ALL_QUEUES, *extra: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``jobbench worker --burst`` to completion; its exit code must be 0."""
        try:
            done = self.cli(
                "worker", "--burst", "--queue", queues, *extra, site=None, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"burst worker did not finish within {timeout} s: {exc.stdout!r}")
        assert done.returncode == 0, f"worker exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done

    def start(self, label: str, *args: str) -> Proc:
        log = self.tmp / f"{label}-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self.command(*args), stdout=out, stderr=subprocess.STDOUT, env=self.env()
            )
        started = Proc(proc, log)
        self.procs.append(started)
        return started

    def start_worker(self, queues: str = ALL_QUEUES) -> Proc:
        return self.start("worker", "worker", "--queue", queues)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.proc.poll() is None:
                proc.proc.kill()
                proc.proc.wait(10)


def forget_compat() -> None:
    for mod in [m for m in sys.modules if m == APP or m.startswith(APP + ".")]:
        del sys.modules[mod]
    importlib.invalidate_caches()


def write_compat_app(apps_dir: Path) -> None:
    pkg = apps_dir / APP
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(COMPAT_HOOKS)
    (pkg / "doctypes.py").write_text(textwrap.dedent(COMPAT_DOCTYPES))
    (pkg / "jobs.py").write_text(COMPAT_JOBS)


def _write_apps(apps_dir: Path) -> None:
    write_stub_app(apps_dir, "frappe")
    write_compat_app(apps_dir)


def _forget_apps() -> None:
    forget_stub_apps()
    forget_compat()


def make_compat(kind: str, tmp_path: Path) -> Iterator[Compat]:
    from jobbench.sites import new_site

    with broker_bench(kind, tmp_path / "fb", _write_apps, _forget_apps) as bench:
        compat = Compat(kind, bench, tmp_path)
        try:
            new_site(bench, SITE, apps=["frappe", APP])
            bench.update_site_config(SITE, {"time_zone": ZONE})
            yield compat
        finally:
            compat.stop_all()


@pytest.fixture(name="fc", params=["sqlite", "redis"])
def fc_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Compat]:
    """A fresh bench with site1 running the stub frappe and compat, on each broker."""
    yield from make_compat(request.param, tmp_path)


@pytest.fixture(name="fc_sqlite")
def fc_sqlite_fixture(tmp_path: Path) -> Iterator[Compat]:
    """The same bench on the SQLite broker only (for cases that involve no broker)."""
    yield from make_compat("sqlite", tmp_path)
