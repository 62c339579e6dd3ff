"""What a new user meets in the first hour, as real ``jobbench`` processes: one-line usage
errors with a hint, one job id (the caller's or the namespaced one the worker logs), ``jobs
retry`` refusing a finished job, tables that survive a pipe, filters that refuse unknown
names, and ``start`` saying what it could not start. Every refusal is one line, a non-zero
exit, and leaves the bench as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import (
    assert_error,
    assert_unchanged,
    assert_usage_error,
    cli_env,
    ok,
    run_cli,
    snapshot,
)

JOBS = """
def fine(tag=""):
    return tag


def flaky():
    raise ValueError("flaky failed on purpose")
"""
LONG_ID = "an-id-longer-than-any-terminal-column-" + "x" * 60


@pytest.fixture
def jobs_bench(bench_dir: Path) -> Path:
    """The template bench with two jobs run: ``flaky-a`` failed, ``LONG_ID`` finished."""
    (bench_dir / "apps" / "tapp" / "firstjobs.py").write_text(JOBS)
    for method, job_id in (("flaky", "flaky-a"), ("fine", LONG_ID)):
        ok(
            run_cli(
                "--site",
                "s1",
                "enqueue",
                f"tapp.firstjobs.{method}",
                "--job-id",
                job_id,
                cwd=bench_dir,
            )
        )
    log = ok(run_cli("worker", "--burst", cwd=bench_dir))
    assert "s1::flaky-a" in log  # the id a person copies from the worker's log
    # The worker's processes leave the queue file's WAL behind; the next one to close the file
    # checkpoints it. Done here, so that the refusals below can show they changed nothing.
    ok(run_cli("--site", "s1", "jobs", "list", cwd=bench_dir))
    return bench_dir


def _usage(bench: Path, args: list[str], *needles: str) -> str:
    before = snapshot(bench)
    line = assert_usage_error(run_cli(*args, cwd=bench), *needles)
    assert_unchanged(before, bench)
    return line


def _refused(bench: Path, args: list[str], *needles: str) -> str:
    before = snapshot(bench)
    line = assert_error(run_cli(*args, cwd=bench), *needles)
    assert_unchanged(before, bench)
    return line


# -- usage errors: one line with a hint --------------------------------------------------------
@pytest.mark.parametrize(
    "args, expected",
    [
        pytest.param(
            ["jobs", "list", "--site", "s1"],
            "Error: --site goes before the command: jobbench --site s1 jobs list",
            id="site-after-jobs-list",
        ),
        pytest.param(
            ["migrate", "--site=s1"],
            "Error: --site goes before the command: jobbench --site s1 migrate",
            id="site-equals-after-command",
        ),
        pytest.param(
            ["list-sites", "--bench", "/x"],
            "Error: --bench goes before the command: jobbench --bench /x list-sites",
            id="bench-after-command",
        ),
    ],
)
def test_a_global_option_after_the_command_gets_the_corrected_line(
    bench_dir: Path, args: list[str], expected: str
) -> None:
    assert _usage(bench_dir, args) == expected


@pytest.mark.parametrize(
    "args, needles",
    [
        pytest.param(["jobs", "list", "--bogus"], ["--bogus", "'jobbench jobs list --help'"]),
        pytest.param(["jobs", "list", "--status", "done"], ["'done'", "failed", "--help"]),
        pytest.param(["new-site"], ["Missing argument 'NAME'", "'jobbench new-site --help'"]),
        pytest.param(["nope"], ["No such command 'nope'", "'jobbench --help'"]),
    ],
)
def test_other_usage_errors_are_one_line_with_a_help_pointer(
    bench_dir: Path, args: list[str], needles: list[str]
) -> None:
    _usage(bench_dir, args, *needles)


def test_site_all_on_a_one_site_command_names_all_sites(bench_dir: Path) -> None:
    ok(run_cli("new-site", "s2", cwd=bench_dir))
    line = _refused(bench_dir, ["--site", "all", "jobs", "list"], "acts on one site")
    assert "jobbench --site s1 jobs list --all-sites" in line
    line = _refused(bench_dir, ["--site", "all", "jobs", "show", "x"], "acts on one site")
    assert "--all-sites" not in line  # jobs show has no such option


def test_bare_jobbench_prints_its_help(bench_dir: Path) -> None:
    out = ok(run_cli(cwd=bench_dir))
    assert out.startswith("Usage: jobbench") and "\n  new-app " in out


# -- one job id ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--site", "s1", "jobs", "show", "flaky-a"], id="caller-id"),
        pytest.param(["--site", "s1", "jobs", "show", "s1::flaky-a"], id="namespaced"),
        pytest.param(["jobs", "show", "s1::flaky-a"], id="namespaced-names-the-site"),
    ],
)
def test_jobs_show_takes_either_id(jobs_bench: Path, args: list[str]) -> None:
    data = json.loads(ok(run_cli(*args, "--format", "json", cwd=jobs_bench)))
    assert (data["id"], data["status"]) == ("flaky-a", "failed")
    assert "flaky failed on purpose" in data["exc_info"]


def test_a_namespaced_id_of_another_site_is_refused_with_the_right_command(
    jobs_bench: Path,
) -> None:
    ok(run_cli("new-site", "s2", cwd=jobs_bench))
    _refused(
        jobs_bench,
        ["--site", "s2", "jobs", "show", "s1::flaky-a"],
        "no job 's1::flaky-a' on site 's2'",
        "jobbench --site s1 jobs show s1::flaky-a",
    )


def test_retry_refuses_a_finished_job_unless_forced(jobs_bench: Path) -> None:
    _refused(jobs_bench, ["--site", "s1", "jobs", "retry", LONG_ID], "finished", "--force")
    out = ok(run_cli("--site", "s1", "jobs", "retry", "s1::flaky-a", cwd=jobs_bench))
    assert out == "s1::flaky-a: queued again\n"
    out = ok(run_cli("--site", "s1", "jobs", "retry", LONG_ID, "--force", cwd=jobs_bench))
    assert out == f"{LONG_ID}: queued again\n"
    help_text = ok(run_cli("jobs", "retry", "--help", cwd=jobs_bench))
    assert "failed, stopped or canceled" in " ".join(help_text.split())


# -- output in pipes ----------------------------------------------------------------------------
def test_tables_in_a_pipe_are_tab_separated_and_whole(jobs_bench: Path) -> None:
    out = ok(run_cli("--site", "s1", "jobs", "list", cwd=jobs_bench, env={"COLUMNS": "60"}))
    header, *rows = out.splitlines()
    assert header.split("\t") == [
        "id", "site", "queue", "status", "method", "enqueued", "attempts", "error"
    ]  # fmt: skip
    cells = {row.split("\t")[0]: row.split("\t") for row in rows}
    assert set(cells) == {"flaky-a", LONG_ID}  # whole ids: `cut -f1` gives them back
    assert cells["flaky-a"][3] == "failed"
    assert cells["flaky-a"][-1] == "ValueError: flaky failed on purpose"
    assert cells[LONG_ID][-1] == ""

    failed = ok(run_cli("--site", "s1", "jobs", "list", "--status", "failed", cwd=jobs_bench))
    assert [row.split("\t")[0] for row in failed.splitlines()[1:]] == ["flaky-a"]
    rows = json.loads(ok(run_cli("--site", "s1", "jobs", "list", "-f", "json", cwd=jobs_bench)))
    assert {r["id"] for r in rows} == {"flaky-a", LONG_ID}


@pytest.mark.parametrize(
    "args, needles",
    [
        pytest.param(
            ["jobs", "list", "--queue", "shrot"],
            ["queue 'shrot' is not valid", "short, default, long"],
            id="jobs-list",
        ),
        pytest.param(
            ["jobs", "purge-failed", "--queue", "shrot"], ["queue 'shrot'"], id="purge-failed"
        ),
        pytest.param(["jobs", "show", "nope"], ["no job 'nope' on site 's1'"], id="show"),
        pytest.param(["jobs", "stop", "s1::nope"], ["no job 's1::nope'"], id="stop"),
        pytest.param(["jobs", "delete", "nope"], ["no job 'nope'"], id="delete"),
    ],
)
def test_unknown_names_in_filters_and_ids_are_errors(
    jobs_bench: Path, args: list[str], needles: list[str]
) -> None:
    _refused(jobs_bench, ["--site", "s1", *args], *needles)


# -- start says what it left out ------------------------------------------------------------------
HIDE_DASHBOARD = """
import importlib.util

_find_spec = importlib.util.find_spec


def _hidden(name, package=None):
    return None if name == "uvicorn" else _find_spec(name, package)


importlib.util.find_spec = _hidden
"""


def test_start_says_in_one_line_it_left_the_dashboard_out(bench_dir: Path, tmp_path: Path) -> None:
    """As without the dashboard extra: ``find_spec("uvicorn")`` answers None (sitecustomize)."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_DASHBOARD)
    path = os.pathsep.join(p for p in (str(hide), os.environ.get("PYTHONPATH", "")) if p)
    log = tmp_path / "start.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobbench", "start", "--no-color"],
            cwd=bench_dir,
            env=cli_env({"PYTHONPATH": path}),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "Scheduler " not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = log.read_text().splitlines()
    (note,) = [line for line in lines if "not started" in line]
    assert note.startswith("start")
    assert "not started: dashboard (the dashboard extra is not installed: no uvicorn;" in note
    assert "pip install 'jobbench[dashboard]'" in note
    assert "scheduler, worker." in lines[0] and "dashboard" not in lines[0]
