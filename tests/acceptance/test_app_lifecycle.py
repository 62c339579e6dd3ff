"""An app of one's own, as a new user goes: ``new-app``, ``install-app``, a job of it run by a
burst worker, its schedule, then ``uninstall-app`` and ``remove-app``; and a missing or broken
app that ``doctor``, ``list-apps`` and ``uninstall-app`` name instead of stopping at. Each a
real ``jobbench`` process; every refusal is one line, a non-zero exit, and nothing changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .helpers import assert_error, assert_unchanged, ok, run_cli, snapshot, sqlite_tables

SITE_DB = Path("sites") / "s1" / "site.sqlite3"


def jb(bench: Path, *args: str) -> str:
    return ok(run_cli(*args, cwd=bench))


def _fails_cleanly(bench: Path, args: list[str], *needles: str) -> str:
    before = snapshot(bench)
    line = assert_error(run_cli(*args, cwd=bench), *needles)
    assert_unchanged(before, bench)
    return line


def _site_apps(bench: Path) -> list[str]:
    conf = json.loads((bench / "sites" / "s1" / "site_config.json").read_text())
    return list(conf["installed_apps"])


def _uncomment_schedule(app_dir: Path) -> None:
    """Turn the commented scheduler_events example of hooks.py into code, as a user would."""
    hooks = app_dir / "hooks.py"
    lines = hooks.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# scheduler_events"))
    for i in range(start, len(lines)):
        if lines[i].startswith("#     #"):
            continue  # the alternatives stay comments
        lines[i] = lines[i].removeprefix("# ")
        if lines[i] == "}":
            break
    hooks.write_text("\n".join(lines) + "\n")


def test_new_app_install_enqueue_and_run_its_job(bench_dir: Path) -> None:
    out = jb(bench_dir, "new-app", "myapp")
    app = bench_dir / "apps" / "myapp"
    assert f"Created app myapp in {app}" in out
    assert "jobbench --site s1 install-app myapp" in out  # the one site is named
    assert {p.name for p in app.iterdir()} == {"__init__.py", "hooks.py", "tasks.py", "item.py"}
    hooks = (app / "hooks.py").read_text()
    assert 'doctypes = ["myapp.item.Item"]' in hooks and "# scheduler_events = {" in hooks
    assert "myapp" in (bench_dir / "sites" / "apps.txt").read_text().split()

    out = jb(bench_dir, "--site", "s1", "install-app", "myapp")
    assert "created table tabMyapp Item" in out
    assert _site_apps(bench_dir) == ["tapp", "myapp"]

    kwargs = json.dumps({"title": "  First  "})
    job_id = jb(bench_dir, "--site", "s1", "enqueue", "myapp.tasks.add_item", "--kwargs", kwargs)
    log = jb(bench_dir, "worker", "--burst")
    assert f"s1::{job_id.strip()}" in log  # the worker names the job by its namespaced id
    shown = json.loads(jb(bench_dir, "jobs", "show", f"s1::{job_id.strip()}", "-f", "json"))
    assert (shown["status"], shown["result"]) == ("finished", "ITEM-0001"), shown["exc_info"]

    _uncomment_schedule(app)
    assert "added scheduled job type tasks.count_open_items" in jb(
        bench_dir, "--site", "s1", "migrate"
    )
    rows = json.loads(jb(bench_dir, "--site", "s1", "scheduled-jobs", "list", "-f", "json"))
    assert [r["frequency"] for r in rows if r["method"] == "myapp.tasks.count_open_items"] == [
        "Hourly"
    ]
    ran = jb(bench_dir, "--site", "s1", "trigger-scheduler-event", "myapp.tasks.count_open_items")
    assert "Ran tasks.count_open_items on s1" in ran


@pytest.mark.parametrize(
    "name, needles",
    [
        pytest.param("1app", ["invalid app name '1app'"], id="bad-name"),
        pytest.param("my-app", ["invalid app name"], id="dash"),
        pytest.param("tapp", ["already exists"], id="exists"),
        pytest.param("jobbench", ["already exists"], id="builtin"),
        pytest.param("json", ["'json' is already an importable module"], id="shadows-stdlib"),
    ],
)
def test_new_app_refusals(bench_dir: Path, name: str, needles: list[str]) -> None:
    _fails_cleanly(bench_dir, ["new-app", name], *needles)


def test_uninstall_asks_then_keeps_the_data_and_remove_archives(bench_dir: Path) -> None:
    jb(bench_dir, "new-app", "myapp")
    jb(bench_dir, "--site", "s1", "install-app", "myapp")
    _uncomment_schedule(bench_dir / "apps" / "myapp")
    jb(bench_dir, "--site", "s1", "migrate")

    # No terminal to ask on (the test's stdin): refused without --yes, nothing changed.
    _fails_cleanly(bench_dir, ["--site", "s1", "uninstall-app", "myapp"], "--yes")
    _fails_cleanly(bench_dir, ["remove-app", "myapp"], "installed on site(s) s1", "uninstall-app")

    out = jb(bench_dir, "--site", "s1", "uninstall-app", "myapp", "--yes")
    assert "Uninstalled app myapp from s1" in out
    assert "removed scheduled job type tasks.count_open_items" in out
    assert _site_apps(bench_dir) == ["tapp"]
    assert "tabMyapp Item" in sqlite_tables(bench_dir / SITE_DB)  # data kept
    rows = json.loads(jb(bench_dir, "--site", "s1", "scheduled-jobs", "list", "-f", "json"))
    assert not [r for r in rows if r["method"].startswith("myapp.")]
    _fails_cleanly(
        bench_dir, ["--site", "s1", "uninstall-app", "myapp", "--yes"], "not installed on site"
    )

    out = jb(bench_dir, "remove-app", "myapp")
    assert not (bench_dir / "apps" / "myapp").exists()
    (archived,) = (bench_dir / "archived" / "apps").iterdir()
    assert archived.name.startswith("myapp-") and (archived / "hooks.py").is_file()
    assert str(archived) in out
    assert "myapp" not in (bench_dir / "sites" / "apps.txt").read_text().split()
    _fails_cleanly(bench_dir, ["remove-app", "myapp"], "is not in", "apps")

    # The archive is the app as it was: it installs again.
    shutil.copytree(archived, bench_dir / "apps" / "myapp")
    jb(bench_dir, "--site", "s1", "install-app", "myapp")


def test_uninstall_with_drop_data_drops_the_apps_tables(bench_dir: Path) -> None:
    jb(bench_dir, "new-app", "myapp")
    jb(bench_dir, "--site", "s1", "install-app", "myapp")
    out = jb(bench_dir, "--site", "s1", "uninstall-app", "myapp", "--drop-data", "--yes")
    assert "dropped table tabMyapp Item" in out
    tables = sqlite_tables(bench_dir / SITE_DB)
    assert "tabMyapp Item" not in tables and "tabTask" in tables  # tapp's stay


@pytest.mark.parametrize(
    "args, needles",
    [
        pytest.param(["uninstall-app", "nope", "--yes"], ["not installed"], id="not-installed"),
        pytest.param(["uninstall-app", "jobbench", "--yes"], ["built-in"], id="builtin"),
        pytest.param(["uninstall-app", "a-b", "--yes"], ["invalid app name"], id="bad-name"),
        pytest.param(["remove-app", "nope"], ["is not in"], id="remove-unknown"),
        pytest.param(["remove-app", "tapp"], ["installed on site(s) s1"], id="remove-installed"),
    ],
)
def test_uninstall_and_remove_refusals(
    bench_dir: Path, args: list[str], needles: list[str]
) -> None:
    _fails_cleanly(bench_dir, ["--site", "s1", *args], *needles)


@pytest.mark.parametrize("damage", ["missing", "broken"])
def test_a_missing_or_broken_app_is_named_not_fatal(bench_dir: Path, damage: str) -> None:
    jb(bench_dir, "new-app", "myapp")
    jb(bench_dir, "--site", "s1", "install-app", "myapp")
    app = bench_dir / "apps" / "myapp"
    if damage == "missing":
        shutil.rmtree(app)
    else:
        (app / "__init__.py").write_text("raise RuntimeError('boom')\n")

    doctor = jb(bench_dir, "doctor")
    line = next(ln for ln in doctor.splitlines() if "myapp" in ln)
    assert line.startswith("s1: app myapp cannot be loaded:") and "uninstall-app myapp" in line
    report = json.loads(jb(bench_dir, "doctor", "-f", "json"))
    assert list(report["sites"][0]["app_problems"]) == ["myapp"]
    listed = run_cli("list-apps", cwd=bench_dir)
    assert "myapp (cannot be loaded:" in ok(listed)
    as_json = run_cli("list-apps", "-f", "json", cwd=bench_dir)
    assert json.loads(ok(as_json)) == {"s1": ["jobbench", "tapp", "myapp"]}
    assert as_json.stderr.startswith("Warning: app 'myapp'")

    _fails_cleanly(bench_dir, ["--site", "s1", "migrate"], "myapp", "uninstall-app myapp")
    _fails_cleanly(
        bench_dir, ["--site", "s1", "uninstall-app", "myapp", "--drop-data", "--yes"], "myapp"
    )
    out = jb(bench_dir, "--site", "s1", "uninstall-app", "myapp", "--yes")
    assert "Uninstalled app myapp from s1" in out and "could not be loaded" in out
    assert _site_apps(bench_dir) == ["tapp"]
    assert "myapp" not in jb(bench_dir, "doctor")
    jb(bench_dir, "--site", "s1", "migrate")  # works again
