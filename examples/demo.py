"""Run the jobbench demo on the embedded default (SQLite, nothing to install).

    python examples/demo.py [BENCH_DIR]

Creates a bench (in BENCH_DIR, or a temporary folder), a site, installs the demo app, migrates,
then uses the Python API the way Frappe code does and prints what happened at each step.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(*args: str, bench: Path | None = None) -> None:
    """Run one jobbench command as a user would, echoing it first."""
    print(f"$ jobbench {' '.join(args)}", flush=True)
    cmd = [sys.executable, "-m", "jobbench", *(["--bench", str(bench)] if bench else []), *args]
    subprocess.run(cmd, check=True)


def use_the_api(bench: Path) -> list[str]:
    import jobbench as frappe

    print("\n# Python: import jobbench as frappe", flush=True)
    with frappe.site_context("demo.local", bench_path=bench):
        for subject in ("Write the report", "Review the numbers"):
            doc = frappe.new_doc("Task", subject=subject)
            doc.save()
            print(f"created {doc.name}: {doc.subject!r} (status {doc.status}, owner {doc.owner})")
        frappe.db.after_commit.add(lambda: print("after_commit callback ran: the data is durable"))
        frappe.db.commit()
        try:
            frappe.new_doc("Task", subject="x", status="Lost").save()
        except frappe.ValidationError as exc:
            print(f"refused as expected: {exc}")
        for row in frappe.get_all("Task", fields=["name", "subject", "status"], order_by="name"):
            print(f"  {row.name}  {row.status:<6}  {row.subject}")
        enabled = frappe.db.get_single_value("System Settings", "enable_scheduler")
        print(f"System Settings: enable_scheduler={enabled}")

        print("\n# Background jobs (the embedded SQLite broker)", flush=True)
        from demo_app.tasks import long_running_job

        jobs = [
            frappe.enqueue(long_running_job, queue="short", param1="A", param2="B", track_job=True),
            frappe.enqueue("demo_app.tasks.create_task", subject="Made by a worker"),
            frappe.enqueue_doc("Task", "TASK-0001", "do_something", param="value"),
            frappe.enqueue("demo_app.tasks.fail_loudly", queue="long"),
        ]
        for job in jobs:
            print(f"enqueued {job.job_name} on {job.queue!r} -> {job.status}")
    return [job.id for job in jobs]


def show_jobs(bench: Path, job_ids: list[str]) -> None:
    import jobbench as frappe

    with frappe.site_context("demo.local", bench_path=bench):
        for job_id in job_ids:
            job = frappe.get_job(job_id)
            assert job is not None
            outcome = (
                job.result if job.is_finished else (job.exc_info or "").strip().splitlines()[-1]
            )
            print(f"  {job.job_name:<40} {job.status:<9} {outcome}")
        task = frappe.get_all("Background Task", fields=["task_name", "status", "progress"])[0]
        print(f"Background Task: {task.task_name} {task.status} ({task.progress:.0f}%)")
        errors = frappe.db.count("Error Log")
        print(f"Error Log entries: {errors}")


def run_scheduler(bench: Path) -> None:
    """Let the real scheduler tick for a few seconds, then run what it enqueued."""
    import jobbench as frappe
    from jobbench.bench import Bench

    print("\n# The scheduler (hooks: scheduler_events)")
    Bench(bench).update_common_config({"scheduler_tick_interval": 1, "scheduler_interval": 2})
    run("--site", "demo.local", "migrate", bench=bench)  # next runs follow the new interval
    run("--site", "demo.local", "scheduled-jobs", "list", bench=bench)
    print("$ jobbench schedule & jobbench worker &   (both stopped after 6 s)", flush=True)
    base = [sys.executable, "-m", "jobbench", "--bench", str(bench)]
    procs = [subprocess.Popen([*base, "schedule"]), subprocess.Popen([*base, "worker", "--quiet"])]
    time.sleep(6)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)  # warm shutdown
    for proc in procs:
        proc.wait(timeout=30)
    run("--site", "demo.local", "trigger-scheduler-event", "daily", bench=bench)
    with frappe.site_context("demo.local", bench_path=bench):
        last = frappe.get_job("scheduled_job::tasks.count_open_tasks")
        if last is not None:  # each run reuses the job id scheduled_job::<job type>
            print(f"last scheduled run of count_open_tasks: {last.status}, result {last.result}")
        for log in frappe.get_all("Scheduled Job Log", fields=["scheduled_job_type", "status"]):
            print(f"Scheduled Job Log: {log.scheduled_job_type} {log.status}")


def main() -> None:
    target = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None
    bench = target or Path(tempfile.mkdtemp(prefix="jobbench-demo-")) / "bench"
    run("init", str(bench))
    shutil.copytree(
        HERE / "demo_app", bench / "apps" / "demo_app", ignore=shutil.ignore_patterns("__pycache__")
    )
    print(f"(copied examples/demo_app into {bench / 'apps'})")
    run("new-site", "demo.local", bench=bench)
    run("--site", "demo.local", "install-app", "demo_app", bench=bench)
    run("--site", "demo.local", "migrate", bench=bench)
    run("list-apps", bench=bench)
    job_ids = use_the_api(bench)
    print()
    run("worker", "--burst", bench=bench)
    print("\n# What the jobs did")
    show_jobs(bench, job_ids)
    run_scheduler(bench)
    print(f"\nDemo bench left at {bench}")
    print_next_steps(bench)


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it (``.venv/bin/...``)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_next_steps(bench: Path) -> None:
    """What to try next, with this bench's path and the dashboard's address."""
    import importlib.util

    from jobbench.bench import Bench

    bin_dir = Path(sys.executable).parent
    activate = bin_dir / "activate"
    conf = Bench(bench).common_config()
    url = f"http://{conf.get('dashboard_host') or '127.0.0.1'}:{conf.get('dashboard_port', 8000)}/"
    has_dashboard = all(importlib.util.find_spec(m) for m in ("starlette", "jinja2", "uvicorn"))
    on_path = f". {_shown(activate)}   # puts jobbench on the PATH"
    if not activate.exists():
        on_path = f"export PATH={_shown(bin_dir)}:$PATH"
    lines = [
        on_path,
        f"cd {bench}",
        "jobbench --site demo.local jobs list --status failed   # the failed job and its error",
        "jobbench doctor                                        # scheduler, queues, workers",
        "jobbench new-app myapp && jobbench --site demo.local install-app myapp",
        "jobbench start     # scheduler + workers + dashboard in the foreground; Ctrl-C stops",
    ]
    print("\nTry next (in a shell):")
    for line in lines:
        print(f"  {line}")
    if has_dashboard:
        print(f"then open the dashboard at {url}")
    else:
        print(
            f"the dashboard ({url}) needs its extra: "
            f"{_shown(bin_dir / 'pip')} install -e '.[dashboard]'"
        )


if __name__ == "__main__":
    main()
