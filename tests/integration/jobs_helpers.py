"""The ``engine`` fixture for the job-engine integration tests, and what they share.

``engine`` is parametrised over the two brokers: a fresh bench in tmp_path with the app ``japp``
(a Task doctype and the job functions in ``JOBS_MODULE``) installed on two SQLite sites,
``site1`` and ``site2``. For Redis the bench's ``redis_queue`` is database 13 of the test server
with a unique ``bench_id``, whose keys are deleted before and after (not FLUSHDB: concurrent
runs of these tests share the database). Workers are real
processes (``python -m jobbench ... worker``); waits poll with a deadline, never sleep blindly.

Test modules import the fixture explicitly: ``from .jobs_helpers import engine_fixture``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import jobbench
from conftest import drop_bench_keys, redis_db, release_bench, require_service  # tests/conftest.py
from jobbench.bench import Bench, init_bench
from jobbench.brokers.base import Broker
from jobbench.jobs.record import JobRecord, full_id

REDIS_SERVER = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_URL = f"{REDIS_SERVER}/{redis_db(13)}"
APP = "japp"
ALL_QUEUES = "short,default,long"

HOOKS = 'doctypes = ["japp.doctypes.Task"]\n'

DOCTYPES_MODULE = """
from __future__ import annotations

from jobbench.model import Document


class Task(Document):
    doctype = "Task"
    naming = "TASK-.####"

    subject: str
    status: str = "Open"

    def mark(self, status: str = "Closed") -> str:
        self.status = status
        self.save()
        return self.subject
"""

JOBS_MODULE = '''
"""Job functions the integration tests enqueue."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

import jobbench

ALL_SIGNALS = {signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT}


def noop():
    return None


def add(a, b):
    return a + b


def write_task(subject):
    doc = jobbench.new_doc("Task", subject=subject)
    doc.insert()
    return doc.name


def write_task_then_fail(subject):
    write_task(subject)
    raise ValueError(f"boom after writing {subject}")


def whoami():
    return jobbench.session.user


def write_as_user(subject):
    return [jobbench.local.site, jobbench.session.user, write_task(subject)]


def append_line(path, tag):
    with open(path, "a") as f:
        f.write(tag + "\\n")


def touch(path):
    Path(path).write_text("the job ran")


def swallow_everything(seconds=60):
    """Catch every exception, BaseException included, and keep going."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except BaseException:
            pass


def block_in_c(seconds=60):
    """Sit inside one C call that never returns to Python: signals stay pending meanwhile."""
    signal.pthread_sigmask(signal.SIG_BLOCK, ALL_SIGNALS)
    ctypes.CDLL(None).sleep(seconds)


def exit_hard(code=3):
    os._exit(code)


def fork_child(pid_file, seconds=60):
    """Start a child process (an exec'd sleep), record its pid, then block in C."""
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp("sleep", ["sleep", str(seconds)])
        finally:
            os._exit(1)
    Path(pid_file).write_text(str(pid))
    block_in_c(seconds)


def sleep_then_return(seconds):
    time.sleep(seconds)
    return seconds


def wait_for_file(path, timeout=30):
    """Return once ``path`` exists (the test's go signal)."""
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)
    return "went"


def touch_then_wait(mark, go, timeout=30):
    """Leave a line in ``mark`` the moment it starts, then wait for the go signal."""
    with open(mark, "a") as out:
        out.write("started\\n")
    wait_for_file(go, timeout)


def wait_then_touch(go, done, timeout=30):
    """Wait for the go signal, then leave a file behind: the job ran to its end."""
    wait_for_file(go, timeout)
    open(done, "w").close()
    return "done"


def progress_then_wait(go, timeout=30):
    jobbench.publish_progress(50, "half way")
    wait_for_file(go, timeout)
    jobbench.publish_progress(90, "almost")
    return {"done": True}


def own_task_status():
    return jobbench.db.get_value("Background Task", {"job_id": jobbench.job.id}, "status")


def _bump(counter):
    path = Path(counter)
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


def fail_first_time(counter):
    n = _bump(counter)
    if n == 1:
        raise RuntimeError("first attempt fails")
    return n


def retry_in_place_once(counter):
    n = _bump(counter)
    if n == 1:
        raise jobbench.RetryBackgroundJobError("not yet, try again")
    return [n, jobbench.session.user]


def read_publish_write(counter, subject):
    """Read, publish progress (a commit elsewhere on the site DB), then write."""
    n = _bump(counter)
    jobbench.get_all("Task")
    jobbench.publish_progress(30, "read")
    write_task(subject)
    jobbench.publish_progress(60, "written")
    return n


def echo(**kwargs):
    return {"values": kwargs, "types": {k: type(v).__name__ for k, v in kwargs.items()}}


def doc_arg(doc):
    return [type(doc).__name__, doc.doctype, doc.name, doc.subject]


def describe(value):
    return f"{type(value).__name__}:{value!r}"


async def async_write(subject, pause=0.01):
    """An async def job: awaits, then writes through the site context (contextvars)."""
    import asyncio

    await asyncio.sleep(pause)
    name = write_task(subject)
    return [jobbench.local.site, jobbench.session.user, name]


async def async_fail(subject):
    import asyncio

    write_task(subject)  # rolled back with the failure
    await asyncio.sleep(0)
    raise ValueError(f"async boom after {subject}")


async def async_fail_first_time(counter):
    import asyncio

    await asyncio.sleep(0)
    return fail_first_time(counter)


async def async_sleep_then_mark(seconds, path):
    """Sleep past the soft timeout; the cancellation must run the finally block."""
    import asyncio

    try:
        await asyncio.sleep(seconds)
    finally:
        Path(path).write_text("unwound")


async def async_where(seconds=0.3):
    """Await, then say which thread ran it, in which site and as whom."""
    import asyncio
    import threading

    await asyncio.sleep(seconds)
    return [threading.get_ident(), jobbench.local.site, jobbench.session.user]


async def async_retry_in_place_once(counter):
    """Ask for an in-place retry on the first attempt (its pause is 1 s)."""
    import asyncio

    await asyncio.sleep(0)
    if _bump(counter) == 1:
        raise jobbench.RetryBackgroundJobError("try again in place")
    return time.time()


async def async_block(seconds=60):
    """An async def job that never awaits: it blocks the loop's thread in C."""
    block_in_c(seconds)
'''


def write_jobs_app(apps_dir: Path) -> Path:
    pkg = apps_dir / APP
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(HOOKS)
    (pkg / "doctypes.py").write_text(textwrap.dedent(DOCTYPES_MODULE))
    (pkg / "jobs.py").write_text(JOBS_MODULE)
    return pkg


def forget_app() -> None:
    for mod in [m for m in sys.modules if m == APP or m.startswith(APP + ".")]:
        del sys.modules[mod]
    importlib.invalidate_caches()


def deadline_loop(timeout: float, what: str, pause: float = 0.02) -> Iterator[None]:
    """Yield until the caller breaks out; fail naming ``what`` once ``timeout`` has passed."""
    end = time.monotonic() + timeout
    while True:
        yield
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check()`` until it returns something truthy; return that."""
    for _ in deadline_loop(timeout, what):
        value = check()
        if value:
            return value
    raise AssertionError("unreachable")


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


WORKER_SCRIPT = """
import sys
from pathlib import Path
from jobbench.bench import Bench
from jobbench.worker.worker import Worker

Worker(
    Bench(Path(sys.argv[1])), sys.argv[2].split(","), heartbeat_interval=0.5, heartbeat_ttl=2
).work()
"""


@dataclass
class WorkerProc:
    """A worker process started in the background, its output in a log file."""

    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 10) -> None:
        wait_until(lambda: text in self.output(), timeout, f"{text!r} in the worker log")

    def wait(self, timeout: float = 20) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"worker {self.pid} did not exit within {timeout} s:\n{self.output()}")

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(10)


@dataclass
class Engine:
    """A bench with two sites and the jobs app, on one broker kind."""

    kind: str
    bench: Bench
    tmp: Path
    workers: list[WorkerProc] = field(default_factory=list)

    @property
    def path(self) -> str:
        return str(self.bench.path)

    def ctx(self, site: str = "site1", user: str | None = None) -> Any:
        return jobbench.site_context(site, self.bench.path, user=user)

    def broker(self) -> Broker:
        from jobbench.brokers.factory import get_broker

        return get_broker(self.bench, self.bench.common_config())

    def set_common(self, **values: Any) -> None:
        self.bench.update_common_config(values)

    def record(self, job_id: str, site: str = "site1") -> JobRecord | None:
        return self.broker().get(full_id(site, job_id))

    def wait_status(
        self, job_id: str, statuses: str | tuple[str, ...], timeout: float = 15, site: str = "site1"
    ) -> JobRecord:
        wanted = (statuses,) if isinstance(statuses, str) else statuses
        for _ in deadline_loop(timeout, f"job {job_id} to become {'/'.join(wanted)}"):
            record = self.record(job_id, site)
            if record is not None and record.status in wanted:
                return record
        raise AssertionError("unreachable")

    def file(self, name: str) -> str:
        return str(self.tmp / name)

    # -- processes ----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBBENCH_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def run_worker(
        self, queues: str = ALL_QUEUES, timeout: float = 30, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        """A burst worker in a subprocess, to completion; its exit code must be 0."""
        cmd = [sys.executable, "-m", "jobbench", "--bench", self.path, "worker", "--burst"]
        cmd += ["--queue", queues, *extra]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=self.env(), check=False
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"burst worker did not finish within {timeout} s: {exc.stdout!r}")
        assert done.returncode == 0, f"worker exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done

    def start_worker(
        self, queues: str = ALL_QUEUES, burst: bool = False, extra: list[str] | None = None
    ) -> WorkerProc:
        cmd = [sys.executable, "-m", "jobbench", "--bench", self.path, "worker"]
        cmd += ["--queue", queues] + (["--burst"] if burst else []) + (extra or [])
        return self._start(cmd)

    def start_short_heartbeat_worker(self, queues: str = ALL_QUEUES) -> WorkerProc:
        return self._start([sys.executable, "-c", WORKER_SCRIPT, self.path, queues])

    def _start(self, cmd: list[str]) -> WorkerProc:
        log = self.tmp / f"worker-{len(self.workers)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env())
        worker = WorkerProc(proc, log)
        self.workers.append(worker)
        return worker

    def cli(self, *args: str, site: str | None = "site1") -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "jobbench", "--bench", self.path]
        cmd += (["--site", site] if site else []) + list(args)
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, env=self.env(), check=False
        )

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.kill()


def _drop_redis_keys(bench_id: str) -> int:
    """Delete this bench's keys from the test database (conftest.drop_bench_keys)."""
    return drop_bench_keys(REDIS_URL, bench_id)


@pytest.fixture(name="engine", params=["sqlite", "redis"])
def engine_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh bench on the given broker with sites site1 and site2 running the jobs app."""
    from jobbench.sites import new_site

    kind = request.param
    if kind == "redis":
        parts = urlsplit(REDIS_SERVER)
        require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
        importlib.import_module("jobbench.brokers.redis")  # must exist: an error, not a skip
    bench_id = f"jobs-{uuid.uuid4().hex[:12]}"
    if kind == "redis":
        _drop_redis_keys(bench_id)
    bench = init_bench(tmp_path / "jb")
    write_jobs_app(bench.path / "apps")
    forget_app()
    if kind == "redis":
        bench.update_common_config({"redis_queue": REDIS_URL, "bench_id": bench_id})
    new_site(bench, "site1", apps=[APP])
    new_site(bench, "site2", apps=[APP])
    eng = Engine(kind, bench, tmp_path)
    try:
        yield eng
    finally:
        eng.stop_workers()
        release_bench(bench)
        forget_app()
        apps_dir = str(bench.path / "apps")
        while apps_dir in sys.path:
            sys.path.remove(apps_dir)
        if kind == "redis":
            _drop_redis_keys(bench_id)


def max_overlap(records: list[JobRecord]) -> int:
    """The most jobs that ran at the same instant (from started_at/ended_at)."""
    events = sorted(
        [(r.started_at or 0.0, 1) for r in records] + [(r.ended_at or 0.0, -1) for r in records]
    )
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def jobs_path(name: str) -> str:
    return f"{APP}.jobs.{name}"


def job_fn(name: str) -> Callable[..., Any]:
    """A job function imported from the app (the same object workers will import by path)."""
    return getattr(importlib.import_module(f"{APP}.jobs"), name)


def enqueue(
    engine: Engine, method: Any, site: str = "site1", user: str | None = None, **kwargs: Any
) -> Any:
    """Enqueue in a site context of its own and return the Job handle."""
    with engine.ctx(site):
        if user:
            jobbench.set_user(user)
        return jobbench.enqueue(method, **kwargs)


def committed(engine: Engine, fn: Callable[[], Any], site: str = "site1") -> Any:
    """Run ``fn`` in a fresh site context (so it sees only committed data)."""
    with engine.ctx(site):
        return fn()
