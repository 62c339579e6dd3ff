"""Benchmark: the cost of one scheduler tick with many sites and job types, few of them due.

    python benchmarks/tick.py [--sites 100] [--types 100] [--due 2] [--ticks 5]

Builds a bench with SITES SQLite sites, each with TYPES Scheduled Job Types of which DUE are
due, then times Scheduler.tick() (the same call `jobbench schedule` makes). Target (issue 4):
one tick with 100 sites x 100 job types (few due) in <= 100 ms. The first tick warms the
per-site engines and caches, as a long-running scheduler has them; it is reported apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import jobbench as frappe
from jobbench.bench import init_bench
from jobbench.scheduler.scheduler import Scheduler
from jobbench.sites import new_site

APP_HOOKS = "doctypes = []\n"
APP_TASKS = "def noop():\n    return None\n"


def build(root: Path, sites: int, types: int, due: int) -> Path:
    bench = init_bench(root / "bench")
    app = bench.path / "apps" / "tickapp"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "hooks.py").write_text(APP_HOOKS)
    (app / "tasks.py").write_text(
        APP_TASKS + "".join(f"\n\ndef job_{i}():\n    return {i}\n" for i in range(types))
    )
    for n in range(sites):
        site = f"site{n:03d}"
        new_site(bench, site, apps=("tickapp",))
        with frappe.site_context(site, bench.path) as local:
            past = local.now() - dt.timedelta(days=2)
            for i in range(types):
                doc = frappe.new_doc(
                    "Scheduled Job Type", method=f"tickapp.tasks.job_{i}", frequency="Daily"
                )
                doc.insert()
                if i < due:  # make it due: it last ran two days ago (the trigger re-derives)
                    doc.db_set("last_execution", past, update_modified=False)
            frappe.db.commit()
    return bench.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--types", type=int, default=100)
    parser.add_argument("--due", type=int, default=2)
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jb-tick-") as tmp:
        started = time.perf_counter()
        path = build(Path(tmp), args.sites, args.types, args.due)
        print(
            f"built {args.sites} sites x {args.types} job types in "
            f"{time.perf_counter() - started:.1f} s"
        )
        from jobbench.bench import Bench

        scheduler = Scheduler(Bench(path), quiet=True)
        timings = []
        for n in range(args.ticks + 1):
            t0 = time.perf_counter()
            report = scheduler.tick()
            timings.append((time.perf_counter() - t0) * 1000)
            if n == 0:
                print(f"first tick (cold): {timings[0]:.0f} ms, enqueued {len(report.enqueued)}")
        warm = timings[1:]
        print(
            f"warm tick: median {statistics.median(warm):.0f} ms, max {max(warm):.0f} ms "
            f"({args.sites} sites x {args.types} job types; target <= 100 ms)"
        )


if __name__ == "__main__":
    main()
