"""Benchmarks: jobbench (Redis broker and SQLite broker) side by side with Huey, Dramatiq, RQ
and Celery, in one run on one Redis.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/run.py [--quick] [--only jobbench huey ...] [--scenarios ...]

What each scenario measures, the job bodies and the targets: benchmarks/README.md. The results
table, the ratios against the targets, the machine and the versions are printed and written
to benchmarks/results.md (overwritten on each run). Nothing here is asserted in tests.

Every scenario starts from an empty broker: Redis DB 12 is flushed (only that DB), jobbench
gets a fresh temporary bench, Huey's SQLite file is new. Every process started is ended (with
its children) when its scenario ends, fails or is interrupted; temporary files are deleted.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness, peers, bench_app

from harness import report, systems  # noqa: E402 - after the path is set
from harness.common import DEFAULT_JOBS, Settings, System, flush_db  # noqa: E402
from harness.procs import Procs  # noqa: E402
from harness.scenarios import SCENARIOS, Context, applies  # noqa: E402
from peers import jobbench_source  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 repetition, 2,000 jobs, 500 sleep jobs, 100 latency",
    )
    parser.add_argument("--jobs", type=int, help="no-op jobs in W1-W3 (20,000; --quick 2,000)")
    parser.add_argument("--sleep-jobs", type=int, help="jobs in W5 and W5-async (2,000)")
    parser.add_argument("--latency-jobs", type=int, help="W4 samples (500; --quick 100)")
    parser.add_argument("--reps", type=int, help="repetitions, median shown (3; --quick 1)")
    parser.add_argument(
        "--jobbench-rev",
        metavar="REV",
        help="measure jobbench as committed at this git revision (exported for the run) "
        "instead of the working tree, which edits made during the run would reach",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SYSTEM",
        choices=[*systems.KEYS, *systems.GROUPS],
        help=f"run only these rows: {', '.join([*systems.GROUPS, *systems.KEYS])}",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=list(SCENARIOS),
        help="run only these scenarios: "
        + ", ".join(f"{k} ({v[0]})" for k, v in SCENARIOS.items()),
    )
    return parser


def parse_args(argv: list[str]) -> tuple[Settings, list[str], list[str]]:
    parser = _parser()
    args = parser.parse_args(argv)
    quick = args.quick
    cfg = Settings(
        jobs=args.jobs or (2000 if quick else DEFAULT_JOBS),
        sleep_jobs=args.sleep_jobs or (500 if quick else 2000),
        latency_jobs=args.latency_jobs or (100 if quick else 500),
        reps=args.reps or (1 if quick else 3),
        idle_seconds=3.0 if quick else 10.0,
        quick=quick,
        jobbench_rev=args.jobbench_rev,
    )
    if min(cfg.jobs, cfg.sleep_jobs, cfg.latency_jobs, cfg.reps) < 1:
        parser.error("counts must be at least 1")
    return cfg, systems.expand(args.only), args.scenarios or list(SCENARIOS)


def prepare(keys: list[str], root: Path, results: report.Results) -> list[System]:
    """The systems that can run; the others get their reason in the table and the notes."""
    redis_problem = systems.redis_problem()
    runnable = []
    for key in systems.KEYS:
        reason = "not run" if key not in keys else (redis_problem or systems.problem(key))
        system = systems.make(key, root)
        results.labels[key] = system.label
        if reason:
            results.absent[key] = "not run" if reason == "not run" else "n/a"
            if reason != "not run":
                results.notes.append(f"{system.label}: n/a: {reason}")
        else:
            runnable.append(system)
    return runnable


def run_scenario(ctx: Context, name: str, results: report.Results, rep: int) -> None:
    title, scenario = SCENARIOS[name]
    key = ctx.system.key
    print(f"[{rep}] {ctx.system.label}: {title} ...", flush=True)
    started = time.monotonic()
    try:
        values = scenario(ctx)
    except Exception as exc:  # noqa: BLE001 - record it, go on with the next scenario
        traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        results.notes.append(f"{ctx.system.label}: '{title}' (repetition {rep}) failed: {first}")
        for metric in metrics_of(name):
            results.values.setdefault(key, {}).setdefault(metric, [])
        return
    finally:
        ctx.procs.kill_all()
    results.add(key, values)
    shown = ", ".join(f"{k}={v:,.2f}" for k, v in values.items())
    print(f"      {shown}  ({time.monotonic() - started:.1f} s)", flush=True)


def metrics_of(scenario: str) -> list[str]:
    return {
        "drain1": ["W1", "W2"],
        "drain2": ["W3"],
        "latency": ["pss", "rss", "cpu", "p50", "p99"],
        "io": ["W5", "W5_steady"],
        "async": ["W5a", "W5a_steady"],
    }[scenario]


def run_all(runnable: list[System], cfg: Settings, names: list[str], procs: Procs,
            results: report.Results) -> None:  # fmt: skip
    """Repetition by repetition, the systems taking turns within each."""
    for rep in range(1, cfg.reps + 1):
        for system in runnable:
            layouts = results.layouts.setdefault(system.key, {})
            ctx = Context(system, procs, cfg, layouts)
            for name in names:
                if applies(name, system):
                    run_scenario(ctx, name, results, rep)


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: everything is cleaned


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg, keys, names = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    root = Path(tempfile.mkdtemp(prefix="jobbench-benchmarks-"))
    procs = Procs(root)
    results = report.Results()
    runnable: list[System] = []
    try:
        if cfg.jobbench_rev:
            jobbench_source.use_revision(cfg.jobbench_rev, root)
        results.jobbench_source = jobbench_source.describe()
        runnable = prepare(keys, root, results)
        run_all(runnable, cfg, names, procs, results)
    finally:
        cleanup(procs, runnable, root)
    text = report.write(results, cfg, argv)
    print("\n" + text)
    print(f"(written to {report.RESULTS_MD})")
    return 0


def cleanup(procs: Procs, runnable: list[System], root: Path) -> None:
    """End every process started here, drop connections, empty the Redis DB, delete files."""
    procs.kill_all()
    for system in runnable:
        with contextlib.suppress(Exception):
            system.close()
    with contextlib.suppress(Exception):
        flush_db()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
