"""The report: the results table (rows = systems), the ratios against the targets of issue 10,
how each system's workers ran, the machine and the versions; printed and written to
benchmarks/results.md."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import platform
import sqlite3
import statistics
import time
from dataclasses import dataclass, field

from harness.common import DEFAULT_JOBS, HERE, REDIS_URL, Settings, client
from harness.systems import versions

RESULTS_MD = HERE / "results.md"


@dataclass
class Results:
    labels: dict[str, str] = field(default_factory=dict)  # row key -> label, in order
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)  # row key -> "n/a" or "not run"
    layouts: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    jobbench_source: str = ""  # which jobbench was measured (peers.jobbench_source)
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)
    started: float = field(default_factory=time.monotonic)

    def add(self, key: str, values: dict[str, float]) -> None:
        for metric, value in values.items():
            self.values.setdefault(key, {}).setdefault(metric, []).append(value)

    def get(self, key: str, metric: str) -> float | None:
        """The median over the repetitions, or None if never measured."""
        found = [v for v in self.values.get(key, {}).get(metric, []) if not math.isnan(v)]
        return statistics.median(found) if found else None


# -- the results table ------------------------------------------------------------------------
RATE, MS, MB, PCT = "{:,.0f}", "{:.2f}", "{:.1f}", "{:.2f}"
COLUMNS: list[tuple[str, list[tuple[str, str]]]] = [
    ("W1 enqueue, 1 producer (jobs/s)", [("W1", RATE)]),
    ("W2 drain, 1 process (jobs/s)", [("W2", RATE)]),
    ("W3 drain, 2 processes (jobs/s)", [("W3", RATE)]),
    ("W4 latency p50 / p99 (ms)", [("p50", MS), ("p99", MS)]),
    ("W5 sleep(10 ms), 2 processes: from start / steady (jobs/s)", [("W5", RATE),
                                                                    ("W5_steady", RATE)]),
    ("W5-async, 2 processes: from start / steady (jobs/s)", [("W5a", RATE),
                                                            ("W5a_steady", RATE)]),
    ("idle tree PSS / RSS (MB)", [("pss", MB), ("rss", MB)]),
    ("idle CPU (%)", [("cpu", PCT)]),
]  # fmt: skip


def _cell(results: Results, key: str, parts: list[tuple[str, str]]) -> str:
    if key in results.absent:
        return results.absent[key]
    shown = []
    for metric, fmt in parts:
        value = results.get(key, metric)
        tried = metric in results.values.get(key, {})
        shown.append(fmt.format(value) if value is not None else ("error" if tried else "—"))
    return " / ".join(shown) if any(s != "—" for s in shown) else "—"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def results_table(results: Results) -> str:
    rows = [
        [label, *(_cell(results, key, parts) for _, parts in COLUMNS)]
        for key, label in results.labels.items()
    ]
    return markdown_table(["system", *(title for title, _ in COLUMNS)], rows)


# -- the ratios table -------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    what: str
    metric: str
    ours: str  # row key of the jobbench value
    op: str  # ">=" or "<="
    bound: float
    peer: str | None = None  # row key: the bound is then a ratio ours / peer's
    fmt: str = RATE


TARGETS = [
    Target("W1 enqueue ≥ 1.2× Huey (Redis)", "W1", "jobbench-redis", ">=", 1.2, "huey-redis"),
    Target("W2 drain, 1 process ≥ 2× Huey (Redis)", "W2", "jobbench-redis", ">=", 2,
           "huey-redis"),
    Target("W3 drain, 2 processes ≥ 1.5× Dramatiq", "W3", "jobbench-redis", ">=", 1.5,
           "dramatiq"),
    Target("W4 p50 ≤ Huey's (Redis)", "p50", "jobbench-redis", "<=", 1, "huey-redis", MS),
    Target("W4 p99 ≤ 3 ms (Redis)", "p99", "jobbench-redis", "<=", 3, fmt=MS),
    Target("W4 p99 ≤ 10 ms (SQLite)", "p99", "jobbench-sqlite", "<=", 10, fmt=MS),
    Target("W5 from start ≥ 1.25× Dramatiq", "W5", "jobbench-redis", ">=", 1.25, "dramatiq"),
    Target("W5 steady ≥ 1,440 jobs/s", "W5_steady", "jobbench-redis", ">=", 1440),
    Target("W5-async steady ≥ 3,000 jobs/s (Redis)", "W5a_steady", "jobbench-redis", ">=",
           3000),
    Target("idle tree PSS ≤ 35 MB (Redis)", "pss", "jobbench-redis", "<=", 35, fmt=MB),
    Target("idle tree PSS ≤ 35 MB (SQLite)", "pss", "jobbench-sqlite", "<=", 35, fmt=MB),
    Target("idle CPU ≤ 1 % (Redis)", "cpu", "jobbench-redis", "<=", 1, fmt=PCT),
    Target("idle CPU ≤ 1 % (SQLite)", "cpu", "jobbench-sqlite", "<=", 1, fmt=PCT),
    Target("SQLite broker W2 drain ≥ Huey-SQLite", "W2", "jobbench-sqlite", ">=", 1,
           "huey-sqlite"),
    Target("SQLite broker W3 drain ≥ Huey-SQLite", "W3", "jobbench-sqlite", ">=", 1,
           "huey-sqlite"),
]  # fmt: skip


def _verdict(target: Target, measured: float | None) -> str:
    if measured is None:
        return "n/a"
    met = measured >= target.bound if target.op == ">=" else measured <= target.bound
    return "PASS" if met else "MISS"


def _target_row(results: Results, target: Target) -> list[str]:
    ours = results.get(target.ours, target.metric)
    peer = results.get(target.peer, target.metric) if target.peer else None
    needed = f"{'≥' if target.op == '>=' else '≤'} {target.bound:,g}"
    if target.peer:
        ratio = ours / peer if ours is not None and peer else None
        shown_ratio, needed = ("-" if ratio is None else f"{ratio:.2f}×"), needed + "×"
    else:
        ratio, shown_ratio = ours, "-"

    def show(value: float | None) -> str:
        return "-" if value is None else target.fmt.format(value)

    peer_text = f"{show(peer)} ({target.peer})" if target.peer else "-"
    return [target.what, show(ours), peer_text, shown_ratio, needed, _verdict(target, ratio)]


def ratios_table(results: Results) -> str:
    header = ["target", "jobbench", "peer", "ratio", "needed", "result"]
    return markdown_table(header, [_target_row(results, t) for t in TARGETS])


def layouts_table(results: Results) -> str:
    scenarios = ["W2", "W3", "W4", "W5", "W5-async"]
    rows = [
        [label, *(results.layouts.get(key, {}).get(s, "—") for s in scenarios)]
        for key, label in results.labels.items()
        if key not in results.absent
    ]
    header = ["system", "W2 (W1 has no worker)", "W3", "W4, memory, idle CPU", "W5", "W5-async"]
    return markdown_table(header, rows)


# -- the machine, the versions, the notes -----------------------------------------------------
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):  # noqa: SIM115 - read to the end
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    with contextlib.suppress(OSError, ValueError):
        for line in open("/proc/meminfo", encoding="utf-8"):  # noqa: SIM115 - read to the end
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.0f} GiB"
    return "unknown memory"


def _redis_server() -> str:
    try:
        return str(client().info("server")["redis_version"])
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"unreachable ({exc})"


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def environment(results: Results) -> list[str]:
    found = versions()
    packages = ", ".join(f"{name} {v}" for name, v in found.items())
    minutes = (time.monotonic() - results.started) / 60
    return [
        f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; the run took "
        f"{minutes:.1f} min",
        f"- Machine: {os.cpu_count()} cores ({_cpu_model()}), {_memory_gib()}, "
        f"{platform.system()} {platform.release()}",
        f"- Versions: Python {platform.python_version()}, {packages}, Redis server "
        f"{_redis_server()}, SQLite {sqlite3.sqlite_version}",
        f"- jobbench measured: {results.jobbench_source}",
        f"- Redis: {REDIS_URL} for every system (flushed before each scenario and at the end)",
        f"- Load average (1 / 5 / 15 min) before the run: {_load(results.load)}; after it: "
        f"{_load(os.getloadavg())} (whatever else ran on the machine shared its cores)",
    ]


def standing_notes(cfg: Settings) -> list[str]:
    reps = (
        "from one repetition (noisy: rerun with --reps 3 for medians)"
        if cfg.reps == 1
        else f"the median of {cfg.reps} repetitions"
    )
    sizes = []
    if not cfg.quick and cfg.jobs != DEFAULT_JOBS:
        sizes.append(f"N = {cfg.jobs:,} no-op jobs in W1-W3, set with --jobs (default "
                     f"{DEFAULT_JOBS:,}).")  # fmt: skip
    return [
        *sizes,
        f"Every value is {reps}, each from an empty broker; the systems take turns "
        "within each repetition.",
        "Job bodies (bench_app/jobs.py, the same functions for every system): the no-op does "
        "one Redis INCR on a counter; W5 is `time.sleep(0.01)` then the INCR; W5-async "
        "`await asyncio.sleep(0.01)` then the INCR on an asyncio client. The harness sees "
        "every system's jobs end the same way: by reading that counter.",
        f"W1: {cfg.jobs:,} no-op jobs enqueued one at a time by one producer (this process, "
        "each system's own client API). W2: those jobs drained by one worker process; W3: "
        f"{cfg.jobs:,} drained by two. Drains run from starting the worker process(es) "
        "(interpreter start-up included) to the counter reaching N, checked exactly N.",
        f"W4: one idle worker; {cfg.latency_jobs} no-op jobs enqueued one at a time, each "
        "3-5 ms after the previous one ended; ms from just before the enqueue call to the "
        "producer seeing the job's INCR (it reads the counter every 0.1 ms): enqueue → job "
        "end, as a caller sees it.",
        f"W5: {cfg.sleep_jobs:,} jobs on 2 processes × 8 threads where the system has threads "
        "(the layouts table says what each ran). 'from start' is N / (start of the worker "
        "processes → last job's end), as W2/W3; 'steady' is (N − 1) / (first job's end → last "
        "job's end), without start-up: the ≥ 1.25× Dramatiq target is read on the first, the "
        "≥ 1,440 jobs/s one (90 % of what 16 slots of 10 ms allow) on the second.",
        "Memory and CPU: one worker (the W2 layout) after it started and ran one job; PSS "
        "and RSS summed over the worker process and all its children from "
        "/proc/<pid>/smaps_rollup (RSS counts a page shared by a parent and its forked child in "
        f"both, PSS splits it); CPU = utime + stime of that tree over {cfg.idle_seconds:g} s "
        "idle, as a % of one core.",
        "Huey's SQLite consumer polls; it runs with jobbench's SQLite polling (-d 0.001 -m "
        "0.008 -b 2) rather than its defaults (100 ms, backing off to 10 s).",
        "Celery runs without gossip, mingle and heartbeats (one worker: they only add "
        "start-up time and idle traffic) and no result backend; its prefork children run one "
        "task each, so in W5 it has 2 slots, like RQ.",
    ]


def render(results: Results, cfg: Settings, argv: list[str]) -> str:
    lines = [
        "# jobbench benchmark results",
        "",
        f"`{' '.join(['.venv/bin/python benchmarks/run.py', *argv])}`",
        "",
        *environment(results),
        "",
        "## Results",
        "",
        results_table(results),
        "",
        "## jobbench against the targets (issue 10)",
        "",
        ratios_table(results),
        "",
        "## How each system's workers ran",
        "",
        layouts_table(results),
        "",
        "## Notes",
        "",
        *(f"- {n}" for n in standing_notes(cfg) + results.notes),
        "",
    ]
    return "\n".join(lines)


def write(results: Results, cfg: Settings, argv: list[str]) -> str:
    text = render(results, cfg, argv)
    RESULTS_MD.write_text(text, encoding="utf-8")
    return text
