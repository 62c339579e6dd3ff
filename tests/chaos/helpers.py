"""What the chaos tests share: a bench with the ``chaosapp`` app, worker processes the tests
kill and restart, and the accounting invariant.

Every job of the chaos app records its effect idempotently-visible: one ``O_APPEND`` write of
``<job id>\\t<attempt>`` to an effects file (one write of a short line is atomic), so a job that
ran twice shows up twice. ``account()`` then checks, against the broker, that every enqueued job
ended exactly once in a final state with a reason when it failed, and ran at most once.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import jobbench
from conftest import drop_bench_keys, redis_db  # tests/conftest.py
from jobbench.bench import Bench, init_bench
from jobbench.brokers.base import Broker, Retention
from jobbench.jobs.record import PENDING_STATUSES, JobRecord, full_id

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_SERVER = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_URL = f"{REDIS_SERVER}/{redis_db(9)}"
APP = "chaosapp"
SITE = "site1"
QUEUES = "short,default,long"

JOBS_MODULE = '''
"""Job functions of the chaos suite."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

import jobbench

ALL_SIGNALS = {signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT}


def _append(path, line):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def effect(path, pause=0.0):
    """Record this run (job id and attempt), then take ``pause`` seconds."""
    record = jobbench.job.record
    _append(path, f"{jobbench.job.id}\\t{record.attempts}\\n")
    if pause:
        time.sleep(pause)
    return jobbench.job.id


async def effect_async(path, pause=0.0):
    """``effect`` as an async def job: the pause is awaited."""
    import asyncio

    record = jobbench.job.record
    _append(path, f"{jobbench.job.id}\\t{record.attempts}\\n")
    if pause:
        await asyncio.sleep(pause)
    return jobbench.job.id


def scheduled_mark():
    """A scheduled job type's method: one line per run, naming the enqueue."""
    record = jobbench.job.record
    path = Path(jobbench.local.bench.path) / "marks.log"
    _append(str(path), f"{record.id}\\t{record.enqueued_at!r}\\n")


def swallow_everything(seconds=60):
    """Catch every exception, BaseException included, and keep going."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except BaseException:
            pass


def block_in_c(seconds=60):
    """Sit inside one C call with every signal the worker uses blocked."""
    signal.pthread_sigmask(signal.SIG_BLOCK, ALL_SIGNALS)
    ctypes.CDLL(None).sleep(seconds)


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


'''

WORKER_SCRIPT = """
import sys
from pathlib import Path
from jobbench.bench import Bench
from jobbench.worker.worker import Worker

Worker(
    Bench(Path(sys.argv[1])), sys.argv[2].split(","), heartbeat_interval=0.5, heartbeat_ttl=2,
    name=sys.argv[3], concurrency=int(sys.argv[4]), async_mode=sys.argv[5],
).work()
"""

SCHEDULER_SCRIPT = """
import sys
from pathlib import Path
from jobbench.bench import Bench
from jobbench.scheduler.scheduler import Scheduler

sched = Scheduler(Bench(Path(sys.argv[1])), owner=sys.argv[2], quiet=True)
for line in sys.stdin:
    report = sched.tick(now=float(line))
    print("done", len(report.enqueued), len(report.errors), flush=True)
"""


def write_app(apps_dir: Path) -> None:
    pkg = apps_dir / APP
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text("")
    (pkg / "jobs.py").write_text(textwrap.dedent(JOBS_MODULE))


def forget_app() -> None:
    for mod in [m for m in sys.modules if m == APP or m.startswith(APP + ".")]:
        del sys.modules[mod]
    importlib.invalidate_caches()


def require_redis() -> None:
    parts = urlsplit(REDIS_SERVER)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        pass
    reason = f"Redis is not answering on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{reason}; CI must test against it")
    pytest.skip(reason)


def drop_redis_keys(url: str, bench_id: str) -> None:
    """Delete only this bench's keys (``jb:<bench_id>:*``); never FLUSHDB."""
    drop_bench_keys(url, bench_id)


def report_figures(figures: dict[str, Any]) -> None:
    """Append one scenario's figures for scripts/chaos_report.py (docs/reliability.md), when
    it runs the suite (it names the file in $CHAOS_REPORT); otherwise nothing."""
    out = os.environ.get("CHAOS_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(figures) + "\n")


def wait_until(check: Callable[[], Any], timeout: float, what: str, pause: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)


def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def kill_tree(pid: int) -> None:
    """SIGKILL a worker, its executor's process group (with any job children) and itself."""
    for child in child_pids(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Chaos:
    """A bench with ``site1`` running ``chaosapp``, on one broker kind."""

    kind: str
    bench: Bench
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def path(self) -> str:
        return str(self.bench.path)

    @property
    def effects_file(self) -> str:
        return str(self.tmp / "effects.log")

    def ctx(self, site: str = SITE) -> Any:
        return jobbench.site_context(site, self.bench.path)

    def broker(self) -> Broker:
        from jobbench.brokers.factory import get_broker

        return get_broker(self.bench, self.bench.common_config())

    def keep(self) -> Retention:
        from jobbench.brokers.factory import retention

        return retention(self.bench.common_config())

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBBENCH_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    # -- processes ----------------------------------------------------------------------------
    def start(self, name: str, cmd: list[str], **kwargs: Any) -> Proc:
        log = self.tmp / f"{name}.{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=kwargs.pop("stdout", out), stderr=out, env=self.env(), **kwargs
            )
        entry = Proc(name, proc, log)
        self.procs.append(entry)
        return entry

    def start_worker(
        self, name: str, queues: str = QUEUES, concurrency: int = 1, async_mode: str = "thread"
    ) -> Proc:
        """A worker with a short heartbeat; ``concurrency`` > 1 runs that many sync jobs at
        once; ``async_mode`` says how it runs async def jobs."""
        cmd = [sys.executable, "-c", WORKER_SCRIPT, self.path, queues, name, str(concurrency)]
        cmd.append(async_mode)
        return self.start(name, cmd)

    def start_scheduler(self, name: str) -> Proc:
        cmd = [sys.executable, "-c", SCHEDULER_SCRIPT, self.path, name]
        return self.start(name, cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def kill_all(self) -> None:
        for entry in self.procs:
            kill_tree(entry.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                entry.proc.wait(10)
            for pipe in (entry.proc.stdin, entry.proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()

    # -- jobs ---------------------------------------------------------------------------------
    def enqueue_effects(
        self,
        n: int,
        prefix: str = "j",
        pause: float = 0.0,
        queue: str = "short",
        method: str = "effect",
    ) -> list[str]:
        """Enqueue ``n`` effect jobs (``method``: effect or effect_async); return their ids."""
        ids = []
        with self.ctx():
            for i in range(n):
                job_id = f"{prefix}{i}"
                jobbench.enqueue(
                    f"{APP}.jobs.{method}",
                    queue=queue,
                    job_id=job_id,
                    path=self.effects_file,
                    pause=pause,
                )
                ids.append(full_id(SITE, job_id))
        return ids

    def effects(self) -> Counter[str]:
        path = Path(self.effects_file)
        if not path.exists():
            return Counter()
        lines = path.read_text().splitlines()
        return Counter(full_id(SITE, line.split("\t")[0]) for line in lines)

    def pending(self) -> int:
        counts = self.broker().counts()
        return sum(n for q in counts.values() for s, n in q.items() if s in PENDING_STATUSES)


@dataclass
class Accounting:
    jobs: int = 0
    finished: int = 0
    failed: int = 0
    worker_died: int = 0
    lost: list[str] = field(default_factory=list)  # no record at all
    not_final: list[str] = field(default_factory=list)  # queued/started/scheduled
    no_reason: list[str] = field(default_factory=list)  # failed without exc_info
    duplicates: list[str] = field(default_factory=list)  # ran more than once, unrecorded
    interrupted: int = 0  # requeued after a sibling's hard stop: a second run, recorded
    finished_without_run: list[str] = field(default_factory=list)
    max_detection: float = 0.0  # longest started -> settled of a "worker died" job
    other_failures: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, list[str]]:
        named = {
            "lost": self.lost,
            "not final": self.not_final,
            "failed without a reason": self.no_reason,
            "ran more than once": self.duplicates,
            "finished but never ran": self.finished_without_run,
        }
        return {k: v[:10] for k, v in named.items() if v}


def account(broker: Broker, ids: list[str], effects: Counter[str]) -> Accounting:
    """Check every enqueued job (``ids``, none with retries) against the broker and the
    effects file: final exactly once, a reason when failed, at most one run."""
    acc = Accounting(jobs=len(ids))
    for job_id in ids:
        record: JobRecord | None = broker.get(job_id)
        runs = effects.get(job_id, 0)
        # A job cut off by a sibling's hard stop runs again, and its record says so.
        rerun = record is not None and (record.exc_info or "").startswith("interrupted:")
        allowed = record.attempts if rerun and record is not None else 1
        if runs > allowed:
            acc.duplicates.append(f"{job_id} ran {runs} times")
        if record is None:
            acc.lost.append(job_id)
            continue
        if record.status in PENDING_STATUSES:
            acc.not_final.append(f"{job_id}: {record.status}")
        elif record.status == "finished":
            acc.finished += 1
            acc.interrupted += rerun
            if runs < 1 or runs > allowed or (record.attempts != 1 and not rerun):
                acc.finished_without_run.append(f"{job_id} runs={runs} a={record.attempts}")
        elif record.status == "failed":
            acc.failed += 1
            if not (record.exc_info or "").strip():
                acc.no_reason.append(job_id)
            elif "worker died" in record.exc_info:
                acc.worker_died += 1
                if record.ended_at and record.started_at:
                    acc.max_detection = max(acc.max_detection, record.ended_at - record.started_at)
            else:
                acc.other_failures.append(f"{job_id}: {record.exc_info.splitlines()[-1]}")
    return acc


def make_chaos(kind: str, tmp_path: Path, redis_url: str | None = None) -> Iterator[Chaos]:
    """A chaos bench; ``redis_url`` points the Redis broker at a test-owned server."""
    from jobbench.sites import new_site

    bench_id = f"chaos-{uuid.uuid4().hex[:12]}"
    url = redis_url or REDIS_URL
    if kind == "redis":
        if redis_url is None:
            require_redis()
        importlib.import_module("jobbench.brokers.redis")
        drop_redis_keys(url, bench_id)
    bench = init_bench(tmp_path / "cb")
    write_app(bench.path / "apps")
    forget_app()
    # Keep every failed record for the accounting (the default keeps the newest 1000).
    config: dict[str, Any] = {"rq_failed_jobs_limit": 1_000_000, "rq_results_ttl": 86400}
    if kind == "redis":
        config.update({"redis_queue": url, "bench_id": bench_id})
    bench.update_common_config(config)
    chaos = Chaos(kind, bench, tmp_path)
    try:
        new_site(bench, SITE, apps=[APP])
        yield chaos
    finally:
        chaos.kill_all()
        _forget(bench)
        forget_app()
        apps_dir = str(bench.path / "apps")
        while apps_dir in sys.path:
            sys.path.remove(apps_dir)
        if kind == "redis":
            with contextlib.suppress(Exception):  # a test-owned server may be gone by now
                drop_redis_keys(url, bench_id)


def _forget(bench: Bench) -> None:
    """Close this bench's cached broker and site engines in this process."""
    from jobbench.brokers import factory
    from jobbench.model import database

    kind, where = factory.broker_key(bench, bench.common_config())
    with factory._lock:
        for key in [k for k in factory._brokers if k[:2] == (kind, where)]:
            factory._brokers.pop(key).close()
    for site in bench.list_sites():
        url = bench.merged_config(site).db_url
        with database._engines_lock:
            eng = database._engines.pop(url, None)
        if eng is not None:
            eng.dispose()
