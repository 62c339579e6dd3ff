"""Benchmarks: jobbench (on Redis and on SQLite) side by side with RQ, on the same Redis.

    pip install -e ".[bench]"
    python benchmarks/run.py [--jobs 20000] [--only sqlite|redis|rq] [--quick]

What each scenario measures, and the targets: benchmarks/README.md. The table is printed and
written, with the date, the machine and the versions, to benchmarks/results.md (overwritten on
each run). Numbers depend on the machine: nothing here is asserted in tests.

Every scenario starts from an empty broker: Redis DB 12 is flushed and jobbench gets a fresh
temporary bench (hence a fresh ``bench_id`` and a fresh SQLite queue). Every process started
here is ended (with its children) when its scenario ends, fails or is interrupted, and the
temporary benches are deleted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import importlib.metadata
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import redis

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "results.md"
REDIS_URL = "redis://127.0.0.1:6379/12"  # a DB of its own, flushed before every scenario
SITE = "bench.local"
QUEUE = "default"
JB_REDIS, JB_SQLITE, RQ_FORK, RQ_SIMPLE = COLUMNS = (
    "jobbench-redis",
    "jobbench-sqlite",
    "rq (fork)",
    "rq (simple)",
)
RQ_DRAIN_CAP = {RQ_FORK: 1000, RQ_SIMPLE: 5000}  # RQ drains tens of jobs/s: sample, not 20,000
IDLE_SECONDS = 5.0
SETTLE_SECONDS = 1.0
LATENCY_GAP = (0.003, 0.005)
POLL = 0.002
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A scenario could not be measured (a worker failed, timed out, or lost jobs)."""


# -- processes ----------------------------------------------------------------------------------
def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (field 3), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[tuple[int, str]]:
    """``pid`` and its descendants, each as (pid, start time) so a reused pid is never hit."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))):
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if stat := _proc_stat(current):
            tree.append((current, stat[19]))
            todo.extend(children.get(current, []))
    return tree


def kill_tree(tree: list[tuple[int, str]]) -> None:
    """SIGKILL every process of a ``process_tree`` snapshot that is still that process."""
    for pid, started in tree:
        stat = _proc_stat(pid)
        if stat and stat[19] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


class Procs:
    """Every process this script starts, each logging to a file; all end on ``kill_all``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[subprocess.Popen[bytes], Path] = {}
        self.count = 0

    def start(self, cmd: list[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
        self.count += 1
        log = self.log_dir / f"process-{self.count}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches this script only; it ends them all
            )
        self.running[proc] = log
        return proc

    def wait(self, procs: list[subprocess.Popen[bytes]], timeout: float, what: str) -> None:
        """Wait for all of ``procs`` to exit 0 within ``timeout`` seconds, else BenchError."""
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise BenchError(
                    f"{what} did not finish within {timeout:.0f} s\n{_log_tail(self.running[proc])}"
                ) from None
            if proc.returncode != 0:
                log = _log_tail(self.running[proc])
                raise BenchError(f"{what} exited with code {proc.returncode}\n{log}")
        for proc in procs:
            self.running.pop(proc, None)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL to whatever of its tree is left."""
        tree = process_tree(proc.pid)
        if proc.poll() is None:
            proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        self._end(proc, tree)

    def kill_all(self) -> None:
        for proc in list(self.running):
            self._end(proc, process_tree(proc.pid))

    def _end(self, proc: subprocess.Popen[bytes], tree: list[tuple[int, str]]) -> None:
        kill_tree(tree)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        self.running.pop(proc, None)


def _status_kb(path: str, key: str) -> int:
    try:
        text = Path(path).read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def tree_memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of the process tree in MB: RSS counts shared pages once per process."""
    pids = [p for p, _ in process_tree(pid)]
    rss = sum(_status_kb(f"/proc/{p}/status", "VmRSS") for p in pids)
    pss = sum(_status_kb(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
    return rss / 1024, pss / 1024


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of the process tree, in seconds."""
    total = 0
    for p, _ in process_tree(pid):
        if stat := _proc_stat(p):
            total += int(stat[11]) + int(stat[12])
    return total / CLK_TCK


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(POLL)


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


# -- the systems under test ---------------------------------------------------------------------
class System(Protocol):
    """What a scenario needs of jobbench or RQ."""

    column: str
    procs: Procs

    def fresh(self) -> None: ...
    def producer(self) -> contextlib.AbstractContextManager[Any]: ...
    def enqueue(self, job: str) -> Any: ...
    def is_done(self, handle: Any) -> bool: ...
    def latency(self, handle: Any) -> float: ...
    def worker_cmd(self, burst: bool) -> list[str]: ...
    def statuses(self) -> dict[str, int]: ...


class JobbenchSystem:
    """jobbench on one broker: a fresh bench (new bench_id, empty queue) per scenario."""

    def __init__(self, column: str, kind: str, root: Path, procs: Procs) -> None:
        self.column, self.kind, self.root, self.procs = column, kind, root, procs
        self.bench_path = root

    def fresh(self) -> None:
        from jobbench.bench import init_bench
        from jobbench.brokers.factory import close_brokers
        from jobbench.sites import new_site

        close_brokers()  # the producer's connections to the previous bench
        if self.kind == "redis":
            flush_redis()
        self.bench_path = self.root / f"bench-{self.kind}-{uuid.uuid4().hex[:8]}"
        bench = init_bench(self.bench_path)  # with a new random bench_id
        shutil.copytree(
            HERE / "bench_app",
            self.bench_path / "apps" / "bench_app",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        if self.kind == "redis":
            bench.update_common_config({"redis_queue": REDIS_URL})
        new_site(bench, SITE, apps=["bench_app"])

    def producer(self) -> contextlib.AbstractContextManager[Any]:
        import jobbench

        return jobbench.site_context(SITE, bench_path=self.bench_path)

    def enqueue(self, job: str) -> Any:
        import jobbench

        return jobbench.enqueue(f"bench_app.jobs.{job}", queue=QUEUE)

    def is_done(self, handle: Any) -> bool:
        import jobbench

        return jobbench.get_job(handle.id).status in ("finished", "failed")

    def latency(self, handle: Any) -> float:
        import jobbench

        record = jobbench.get_job(handle.id).record
        return float(record.started_at - record.enqueued_at)

    def worker_cmd(self, burst: bool) -> list[str]:
        cmd = [sys.executable, "-m", "jobbench", "--bench", str(self.bench_path), "worker"]
        return [*cmd, "--quiet", *(["--burst"] if burst else [])]

    def statuses(self) -> dict[str, int]:
        from jobbench.bench import Bench
        from jobbench.brokers.factory import get_broker

        bench = Bench(self.bench_path)
        totals: dict[str, int] = {}
        for by_status in get_broker(bench, bench.common_config()).counts().values():
            for status, n in by_status.items():
                totals[status] = totals.get(status, 0) + n
        return totals


class RQSystem:
    """RQ on Redis DB 12 with one worker class (forking ``Worker`` or ``SimpleWorker``)."""

    def __init__(self, column: str, worker_class: str | None, procs: Procs) -> None:
        self.column, self.worker_class, self.procs = column, worker_class, procs
        self.conn = redis.Redis.from_url(REDIS_URL)

    def fresh(self) -> None:
        import rq

        flush_redis()
        self.queue = rq.Queue(QUEUE, connection=self.conn)

    def producer(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def enqueue(self, job: str) -> Any:
        import rq_jobs

        return self.queue.enqueue(getattr(rq_jobs, job))

    def is_done(self, handle: Any) -> bool:
        return handle.get_status(refresh=True) in ("finished", "failed")  # a str enum

    def latency(self, handle: Any) -> float:
        """started_at - enqueued_at; RQ 3 drops started_at once the job ends, but keeps the
        start of its execution (taken by the worker when it dequeues, before any fork)."""
        handle.refresh()
        started = handle.started_at
        if started is None:
            result = handle.latest_result()
            started = getattr(result, "execution_started_at", None)
        if started is None:
            raise BenchError(f"RQ job {handle.id} has no start time")
        return float((started - handle.enqueued_at).total_seconds())

    def worker_cmd(self, burst: bool) -> list[str]:
        cmd = [sys.executable, "-m", "rq.cli", "worker", "--url", REDIS_URL, "--path", str(HERE)]
        if self.worker_class:
            cmd += ["--worker-class", self.worker_class]
        return [*cmd, "--quiet", *(["--burst"] if burst else []), QUEUE]

    def statuses(self) -> dict[str, int]:
        return {
            "queued": int(self.queue.count),
            "started": int(self.queue.started_job_registry.count),
            "finished": int(self.queue.finished_job_registry.count),
            "failed": int(self.queue.failed_job_registry.count),
        }


# -- scenarios ----------------------------------------------------------------------------------
@dataclass
class Settings:
    jobs: int
    sleep_jobs: int
    latency_jobs: int


def fill(system: System, job: str, n: int) -> float:
    """A fresh broker with ``n`` jobs enqueued one at a time; returns the enqueue seconds."""
    system.fresh()
    with system.producer():
        started = time.perf_counter()
        for _ in range(n):
            system.enqueue(job)
        return time.perf_counter() - started


def drain(system: System, n: int, workers: int) -> float:
    """Seconds from starting ``workers`` burst workers until all exited, all n jobs finished."""
    cwd = HERE if isinstance(system, RQSystem) else None
    started = time.perf_counter()
    procs = [system.procs.start(system.worker_cmd(burst=True), cwd) for _ in range(workers)]
    system.procs.wait(procs, timeout=60 + n * 0.1, what=f"{workers} burst worker(s)")
    elapsed = time.perf_counter() - started
    statuses = system.statuses()
    if statuses.get("finished", 0) != n:
        found = ", ".join(f"{k} {v}" for k, v in statuses.items() if v) or "no jobs at all"
        raise BenchError(f"of {n} jobs, {statuses.get('finished', 0)} finished ({found})")
    return elapsed


def scenario_enqueue(system: System, cfg: Settings) -> dict[str, float]:
    return {"enqueue": cfg.jobs / fill(system, "noop", cfg.jobs)}


def scenario_startup(system: System, _cfg: Settings) -> dict[str, float]:
    """A burst worker on an empty queue: what every drain pays before its first job."""
    system.fresh()
    return {"startup": drain(system, 0, 1)}


def scenario_drain(system: System, cfg: Settings, workers: int) -> dict[str, float]:
    n = min(cfg.jobs, RQ_DRAIN_CAP.get(system.column, cfg.jobs))
    fill(system, "noop", n)
    return {f"drain{workers}": n / drain(system, n, workers)}


def scenario_sleep(system: System, cfg: Settings) -> dict[str, float]:
    n = cfg.sleep_jobs
    fill(system, "sleep_10ms", n)
    wall = drain(system, n, 1)
    return {"sleep_wall": wall, "sleep_overhead": (wall / n - 0.01) * 1000}


def measure_latency(system: System, n: int) -> list[float]:
    """Enqueue one job at a time, each once the previous one is done and a 3-5 ms gap later."""
    handles = []
    for _ in range(n):
        handle = system.enqueue("noop")
        time.sleep(random.uniform(*LATENCY_GAP))
        wait_until(lambda h=handle: system.is_done(h), 30, "a latency job")
        handles.append(handle)
    return [system.latency(h) * 1000 for h in handles]


def scenario_idle(system: System, cfg: Settings) -> dict[str, float]:
    """Latency with one idle, running worker; then its memory and its CPU while idle."""
    system.fresh()
    cwd = HERE if isinstance(system, RQSystem) else None
    proc = system.procs.start(system.worker_cmd(burst=False), cwd)
    try:
        with system.producer():
            measure_latency(system, 5)  # warm-up: the worker is up, imports and caches done
            samples = measure_latency(system, cfg.latency_jobs)
        time.sleep(SETTLE_SECONDS)
        if proc.poll() is not None:
            raise BenchError(f"the worker exited with code {proc.returncode}")
        rss, pss = tree_memory_mb(proc.pid)
        cpu_before, t0 = tree_cpu_seconds(proc.pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        cpu = (tree_cpu_seconds(proc.pid) - cpu_before) / (time.monotonic() - t0) * 100
    finally:
        system.procs.stop(proc)
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return {"p50": statistics.median(samples), "p99": p99, "rss": rss, "pss": pss, "cpu": cpu}


def scenarios(
    system: System, cfg: Settings
) -> list[tuple[str, Callable[[System, Settings], dict[str, float]]]]:
    steps: list[tuple[str, Callable[[System, Settings], dict[str, float]]]] = [
        ("burst worker on an empty queue", scenario_startup),
        ("drain with 1 worker", lambda s, c: scenario_drain(s, c, 1)),
        ("drain with 2 workers", lambda s, c: scenario_drain(s, c, 2)),
        ("idle worker: latency, memory, CPU", scenario_idle),
        ("sleep(0.01) jobs", scenario_sleep),
    ]
    if system.column != RQ_SIMPLE:  # RQ's enqueue does not depend on the worker class
        steps.insert(0, ("enqueue", scenario_enqueue))
    return steps


def run_system(system: System, cfg: Settings, results: Results) -> None:
    for name, step in scenarios(system, cfg):
        print(f"[{system.column}] {name} ...", flush=True)
        started = time.monotonic()
        try:
            values = step(system, cfg)
        except Exception as exc:  # noqa: BLE001 - record it, go on with the next scenario
            traceback.print_exc()
            results.note(f"{system.column}: '{name}' failed: {str(exc).splitlines()[0]}")
            continue
        finally:
            system.procs.kill_all()
        results.values[system.column].update(values)
        shown = ", ".join(f"{k}={v:,.2f}" for k, v in values.items())
        print(f"[{system.column}]   {shown}  ({time.monotonic() - started:.1f} s)", flush=True)
    if system.column == RQ_SIMPLE and "enqueue" in results.values[RQ_FORK]:
        results.values[RQ_SIMPLE]["enqueue"] = results.values[RQ_FORK]["enqueue"]


# -- results --------------------------------------------------------------------------------------
@dataclass
class Results:
    values: dict[str, dict[str, float]] = field(default_factory=lambda: {c: {} for c in COLUMNS})
    absent: dict[str, str] = field(default_factory=dict)  # column -> "n/a" or "not run"
    notes: list[str] = field(default_factory=list)
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def note(self, text: str) -> None:
        self.notes.append(text)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    fmt: str
    targets: dict[str, tuple[str, float]] = field(default_factory=dict)


def metrics(cfg: Settings) -> list[Metric]:
    redis_only, both = (JB_REDIS,), (JB_REDIS, JB_SQLITE)

    def target(op: str, bound: float, cols: tuple[str, ...]) -> dict[str, tuple[str, float]]:
        return {c: (op, bound) for c in cols}

    return [
        Metric("enqueue", f"enqueue {cfg.jobs:,} no-op, 1 producer (jobs/s)", "{:,.0f}",
               target(">=", 5000, redis_only)),
        Metric("drain1", "drain, 1 worker process (jobs/s)", "{:,.0f}",
               {JB_REDIS: (">=", 3000), JB_SQLITE: (">=", 2000)}),
        Metric("drain2", "drain, 2 worker processes (jobs/s)", "{:,.0f}"),
        Metric("startup", "  burst worker start+exit, empty queue (s; in each drain)",
               "{:.2f}"),
        Metric("p50", "enqueue->start latency p50, idle worker (ms)", "{:.2f}",
               target("<=", 2, redis_only)),
        Metric("p99", "enqueue->start latency p99, idle worker (ms)", "{:.2f}",
               {JB_REDIS: ("<=", 10), JB_SQLITE: ("<=", 20)}),
        Metric("sleep_wall", f"{cfg.sleep_jobs:,} x sleep(10 ms), 1 worker: wall (s)", "{:.2f}"),
        Metric("sleep_overhead", "  overhead per job beyond the 10 ms (ms)", "{:.2f}"),
        Metric("rss", "idle worker RSS, process tree sum (MB)", "{:.1f}",
               target("<=", 40, both)),
        Metric("pss", "idle worker PSS, process tree sum (MB)", "{:.1f}"),
        Metric("cpu", f"idle worker CPU over {IDLE_SECONDS:.0f} s (%)", "{:.2f}",
               target("<=", 1, both)),
    ]  # fmt: skip


def _cell(results: Results, column: str, metric: Metric) -> str:
    if column in results.absent:
        return results.absent[column]
    value = results.values[column].get(metric.key)
    return "error" if value is None else metric.fmt.format(value)


def _ratio(results: Results, metric: Metric, rq_column: str) -> str:
    rq_value = results.values[rq_column].get(metric.key)
    parts = []
    for column in (JB_REDIS, JB_SQLITE):
        value = results.values[column].get(metric.key)
        if value is None or not rq_value:
            parts.append("-")
        else:
            parts.append(f"{value / rq_value:.3g}")
    return " / ".join(parts)


def _target(results: Results, metric: Metric) -> tuple[str, str]:
    texts, verdicts = [], []
    for column, (op, bound) in metric.targets.items():
        short = column.removeprefix("jobbench-")
        texts.append(f"{short} {'≥' if op == '>=' else '≤'} {bound:,g}")
        value = results.values[column].get(metric.key)
        if value is not None:
            met = value >= bound if op == ">=" else value <= bound
            verdicts.append(f"{short} {'yes' if met else 'NO'}")
    return "; ".join(texts), ", ".join(verdicts)


def table(results: Results, cfg: Settings) -> str:
    header = [
        "metric",
        *COLUMNS,
        "jobbench/rq-fork (redis / sqlite)",
        "jobbench/rq-simple (redis / sqlite)",
        "target",
        "met",
    ]
    rows = [header]
    for metric in metrics(cfg):
        cells = [_cell(results, c, metric) for c in COLUMNS]
        ratios = [_ratio(results, metric, RQ_FORK), _ratio(results, metric, RQ_SIMPLE)]
        rows.append([metric.label, *cells, *ratios, *_target(results, metric)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


# -- the report -----------------------------------------------------------------------------------
def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _redis_server_version() -> str:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        with contextlib.closing(client):
            return str(client.info("server")["redis_version"])
    except redis.RedisError as exc:
        return f"unreachable ({exc})"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _filesystem(path: Path) -> str:
    best, kind = "", "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            _dev, mount, fstype, *_ = line.split()
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    return kind


def environment(tmp: Path, load: tuple[float, float, float]) -> list[str]:
    return [
        f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Machine: {os.cpu_count()} cores ({_cpu_model()}), {platform.system()} "
        f"{platform.release()}",
        f"- Versions: Python {platform.python_version()}, jobbench {_version('jobbench')}, "
        f"rq {_version('rq')}, redis-py {_version('redis')}, Redis server "
        f"{_redis_server_version()}, SQLite {sqlite3.sqlite_version}",
        f"- Redis: {REDIS_URL} (flushed before each scenario); temporary benches on "
        f"{_filesystem(tmp)} ({tmp.parent})",
        f"- Load average before the run: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        "(1 / 5 / 15 min; other processes share the cores)",
    ]


def standing_notes(cfg: Settings) -> list[str]:
    caps = ", ".join(
        f"{c}: {min(cfg.jobs, cap):,} jobs" for c, cap in RQ_DRAIN_CAP.items() if cfg.jobs > cap
    )
    notes = [
        "Ratios divide each jobbench column by the RQ column (RQ runs on Redis only, so the "
        "SQLite broker is compared with RQ on Redis). Higher is better for jobs/s, lower for "
        "ms, s, MB and %.",
        "Drains: wall time from starting the burst worker process(es) to all of them exiting "
        "(interpreter start-up included), every job checked `finished`.",
        f"Latency: {cfg.latency_jobs} jobs enqueued one at a time, each 3-5 ms after the "
        "previous one and once it is done (so the worker is idle); started_at - enqueued_at "
        "from the job records.",
        "Memory and CPU: the idle worker's process tree (jobbench: supervisor + executor; "
        "RQ: the worker, which forks a horse per job) from /proc, after the latency run.",
        "RQ's enqueue does not depend on the worker class: measured once, shown in both columns.",
        "RQ 3 keeps no `started_at` on a finished job: its latency ends at the start of the "
        "job's execution, which the worker records when it dequeues (before forking).",
    ]
    if caps:
        notes.append(f"RQ drains are measured on a sample ({caps}): rates, not totals.")
    return notes


def write_markdown(results: Results, cfg: Settings, tmp: Path, argv: list[str]) -> str:
    lines = [
        "# jobbench benchmark results",
        "",
        f"`{' '.join(['python benchmarks/run.py', *argv])}`",
        "",
        *environment(tmp, results.load),
        "",
        table(results, cfg),
        "",
        "Notes:",
        "",
        *(f"- {n}" for n in standing_notes(cfg) + results.notes),
        "",
    ]
    text = "\n".join(lines)
    RESULTS_MD.write_text(text, encoding="utf-8")
    return text


# -- main -----------------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> tuple[Settings, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, help="no-op jobs to enqueue and drain (20000)")
    parser.add_argument("--only", choices=["sqlite", "redis", "rq"], help="run one system")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2,000 jobs, 500 sleep jobs, 100 latency"
    )
    args = parser.parse_args(argv)
    jobs = args.jobs or (2000 if args.quick else 20000)
    if jobs < 1:
        parser.error("--jobs must be at least 1")
    cfg = Settings(jobs, 500 if args.quick else 2000, 100 if args.quick else 300)
    return cfg, args.only


def _unavailable(only: str | None) -> dict[str, str]:
    """Columns that cannot run, with the reason."""
    reasons: dict[str, str] = {}
    wanted = {"sqlite": [JB_SQLITE], "redis": [JB_REDIS], "rq": [RQ_FORK, RQ_SIMPLE]}
    for column in COLUMNS:
        if only and column not in wanted[only]:
            reasons[column] = "not run"
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        for column in (JB_REDIS, RQ_FORK, RQ_SIMPLE):
            reasons.setdefault(column, f"n/a: Redis is unreachable ({exc})")
    try:
        importlib.import_module("jobbench.brokers.redis")
    except Exception as exc:  # noqa: BLE001 - not written yet, or broken: say so, go on
        reasons.setdefault(JB_REDIS, f"n/a: jobbench's Redis broker is not importable ({exc!r})")
    try:
        importlib.import_module("rq")
    except ImportError:
        for column in (RQ_FORK, RQ_SIMPLE):
            reasons.setdefault(column, "n/a: rq is not installed (pip install -e '.[bench]')")
    return reasons


def make_systems(root: Path, procs: Procs) -> list[System]:
    return [
        JobbenchSystem(JB_REDIS, "redis", root, procs),
        JobbenchSystem(JB_SQLITE, "sqlite", root, procs),
        RQSystem(RQ_FORK, None, procs),
        RQSystem(RQ_SIMPLE, "rq.worker.SimpleWorker", procs),
    ]


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: everything is cleaned


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg, only = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.path.insert(0, str(HERE))  # rq_jobs and bench_app, for the producer
    root = Path(tempfile.mkdtemp(prefix="jobbench-benchmarks-"))
    procs = Procs(root)
    results = Results()
    try:
        for column, reason in _unavailable(only).items():
            results.absent[column] = reason.split(":")[0]
            if reason != "not run":
                results.note(f"{column}: {reason}")
        for system in make_systems(root, procs):
            if system.column not in results.absent:
                run_system(system, cfg, results)
    finally:
        cleanup(procs, root)
    text = write_markdown(results, cfg, root, argv)
    print("\n" + text)
    print(f"(written to {RESULTS_MD})")
    return 0


def cleanup(procs: Procs, root: Path) -> None:
    """End every process started here, drop connections, empty Redis DB 12, delete benches."""
    procs.kill_all()
    with contextlib.suppress(Exception):
        from jobbench.brokers.factory import close_brokers

        close_brokers()
    with contextlib.suppress(redis.RedisError):
        flush_redis()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
