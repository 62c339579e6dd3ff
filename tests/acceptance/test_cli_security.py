"""The CLI on hostile input (real subprocesses): ``setup`` refuses root and anything that could
add a directive to a unit file; names must match in full (no trailing newline); ids and names
are printed with control characters escaped and rich markup taken literally; bad numbers, deep
JSON, broken config files and missing drivers are one line and a non-zero exit, with nothing
changed on disk."""

from __future__ import annotations

import json
import subprocess
import sys
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

# Runs the CLI with os.geteuid() faked, so "running as root" (and "as nobody") is tested the same
# way whoever runs the suite.
AS_UID = (
    "import os, sys; uid = int(sys.argv.pop(1)); os.geteuid = lambda: uid; "
    "from jobbench.cli import main; main()"
)


def run_as(uid: int, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", AS_UID, str(uid), *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _fails_cleanly(
    bench: Path, args: list[str], *needles: str, env: dict[str, str] | None = None
) -> str:
    before = snapshot(bench)
    line = assert_error(run_cli(*args, cwd=bench, env=env), *needles)
    assert_unchanged(before, bench)
    return line


def _usage_error(bench: Path, args: list[str], *needles: str) -> None:
    before = snapshot(bench)
    assert_usage_error(run_cli(*args, cwd=bench), *needles)
    assert_unchanged(before, bench)


def _common(bench: Path) -> Path:
    return bench / "sites" / "common_site_config.json"


def _edit_common(bench: Path, **values: object) -> None:
    data = json.loads(_common(bench).read_text())
    data.update(values)
    _common(bench).write_text(json.dumps(data))


# -- setup supervisor|systemd -----------------------------------------------------------------

MANAGERS = ["supervisor", "systemd"]


@pytest.mark.parametrize("manager", MANAGERS)
def test_setup_as_root_without_user_is_refused(bench_dir: Path, manager: str) -> None:
    before = snapshot(bench_dir)
    assert_error(run_as(0, "setup", manager, cwd=bench_dir), "root", "--user", "--allow-root")
    assert_unchanged(before, bench_dir)


@pytest.mark.parametrize("manager", MANAGERS)
def test_setup_with_user_root_is_refused(bench_dir: Path, manager: str) -> None:
    _fails_cleanly(bench_dir, ["setup", manager, "--user", "root"], "root", "--allow-root")


def test_setup_allow_root_writes_root_units(bench_dir: Path) -> None:
    ok(run_cli("setup", "systemd", "--user", "root", "--allow-root", cwd=bench_dir))
    unit = (bench_dir / "config" / "systemd" / f"{bench_dir.name}-schedule.service").read_text()
    assert "User=root\n" in unit
    ok(run_as(0, "setup", "supervisor", "--allow-root", cwd=bench_dir))
    assert "user=root\n" in (bench_dir / "config" / "supervisor.conf").read_text()


def test_setup_defaults_to_the_user_running_it(bench_dir: Path) -> None:
    ok(run_as(65534, "setup", "systemd", cwd=bench_dir))  # nobody
    unit = (bench_dir / "config" / "systemd" / f"{bench_dir.name}-schedule.service").read_text()
    assert "User=nobody\n" in unit


@pytest.mark.parametrize("manager", MANAGERS)
@pytest.mark.parametrize(
    ("user", "needle"),
    [
        pytest.param("nobody\nExecStartPre=/bin/sh -c id", "not a user name", id="directive"),
        pytest.param("nobody\n", "not a user name", id="trailing-newline"),
        pytest.param("nobody\r", "not a user name", id="carriage-return"),
        pytest.param("nobody root", "not a user name", id="space"),
        pytest.param("no%ibody", "not a user name", id="systemd-specifier"),
        pytest.param("nobody;x", "not a user name", id="semicolon"),
        pytest.param("", "not a user name", id="empty"),
        pytest.param("0", "not a user name", id="numeric"),
        pytest.param("jbnosuchuser42", "no such user", id="unknown"),
    ],
)
def test_setup_refuses_a_bad_user(bench_dir: Path, manager: str, user: str, needle: str) -> None:
    _fails_cleanly(bench_dir, ["setup", manager, "--user", user], needle)


@pytest.mark.parametrize("manager", MANAGERS)
@pytest.mark.parametrize(
    "folder",
    [
        pytest.param("b\nExecStartPre=touch pwned", id="newline"),
        pytest.param("my bench", id="space"),
        pytest.param("b%i", id="percent"),
        pytest.param("b$HOME", id="dollar"),
        pytest.param('b"q', id="quote"),
    ],
)
def test_setup_refuses_a_bench_path_unsafe_in_unit_files(
    tmp_path: Path, manager: str, folder: str
) -> None:
    bench = tmp_path / folder
    ok(run_cli("init", bench, cwd=tmp_path))
    _fails_cleanly(bench, ["setup", manager, "--user", "nobody"], "bench folder", "unit file")


def test_setup_with_a_plain_user_writes_it(bench_dir: Path) -> None:
    ok(run_cli("setup", "supervisor", "--user", "nobody", cwd=bench_dir))
    assert "user=nobody\n" in (bench_dir / "config" / "supervisor.conf").read_text()


# -- names match in full ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        pytest.param(["new-site", "s2\n"], ["invalid site name", "'s2\\n'"], id="site-newline"),
        pytest.param(["new-site", "s2\x1b[31m"], ["invalid site name"], id="site-escape"),
        pytest.param(["new-site", "s2\t"], ["invalid site name"], id="site-tab"),
        pytest.param(
            ["new-site", "s3", "--install-app", "tapp\n"], ["invalid app name"], id="app-new-site"
        ),
        pytest.param(["--site", "s1", "install-app", "tapp\n"], ["invalid app name"], id="app"),
        pytest.param(
            ["new-site", "s3", "--db-url", "postgresql://u@127.0.0.1/jbdb\n"],
            ["database name"],
            id="db-name",
        ),
        pytest.param(["--site", "s1\n", "migrate"], ["s1\\n", "does not exist"], id="site-option"),
    ],
)
def test_names_with_a_trailing_newline_or_control_character_are_refused(
    bench_dir: Path, args: list[str], needles: list[str]
) -> None:
    _fails_cleanly(bench_dir, args, *needles)


def test_queue_name_with_a_trailing_newline_in_config_is_refused(bench_dir: Path) -> None:
    _edit_common(bench_dir, workers={"bulk\n": {"timeout": 60}})
    _fails_cleanly(bench_dir, ["--site", "s1", "migrate"], "common_site_config.json", "workers")


# -- terminal output escapes what came from outside ---------------------------------------------

EVIL_ID = "evil\n\x1b[31m[bold]x[/bold]\x07"
EVIL_SHOWN = "evil\\n\\x1b[31m[bold]x[/bold]\\x07"


def test_ids_are_printed_escaped_and_literally(bench_dir: Path) -> None:
    wide = {"COLUMNS": "400"}  # rich would shorten the id column otherwise
    out = ok(
        run_cli("--site", "s1", "enqueue", "tapp.doctypes.Task", "--job-id", EVIL_ID, cwd=bench_dir)
    )
    assert out == EVIL_SHOWN + "\n"
    listing = ok(run_cli("--site", "s1", "jobs", "list", cwd=bench_dir, env=wide))
    assert EVIL_SHOWN in listing and "\x1b" not in listing and "\x07" not in listing
    shown = ok(run_cli("--site", "s1", "jobs", "show", EVIL_ID, cwd=bench_dir))
    assert f"id: {EVIL_SHOWN}\n" in shown and "\x1b" not in shown
    stopped = ok(run_cli("--site", "s1", "jobs", "stop", EVIL_ID, cwd=bench_dir))
    assert stopped == f"{EVIL_SHOWN}: canceled\n"
    pending = ok(run_cli("--site", "s1", "doctor", cwd=bench_dir, env=wide))
    assert "\x1b" not in pending


def test_error_messages_are_escaped(bench_dir: Path) -> None:
    line = _fails_cleanly(bench_dir, ["--site", "s1\x1b[2J", "migrate"], "does not exist")
    assert "s1\\x1b[2J" in line and "\x1b" not in line
    ok(run_cli("--site", "s1", "enqueue", "tapp.doctypes.Task", cwd=bench_dir))  # the queue file
    line = _fails_cleanly(bench_dir, ["--site", "s1", "jobs", "retry", "a\x1b[2Jb"], "a\\x1b[2Jb")
    assert "\x1b" not in line


# -- bad numbers and JSON on the command line -------------------------------------------------

HUGE_INT = "1" * 5000  # over Python's int-string limit (4300 digits)
DEEP_JSON = '{"x": ' + "[" * 50_000 + "]" * 50_000 + "}"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(
            ["enqueue", "tapp.doctypes.Task", "--kwargs", f'{{"x": {HUGE_INT}}}'],
            "digits",
            id="kwargs-huge-int",
        ),
        pytest.param(
            ["enqueue", "tapp.doctypes.Task", "--kwargs", DEEP_JSON],
            "nested too deeply",
            id="kwargs-deep",
        ),
        pytest.param(
            ["execute", "tapp.doctypes.Task", "--kwargs", DEEP_JSON],
            "nested too deeply",
            id="execute-deep",
        ),
        pytest.param(
            ["execute", "tapp.doctypes.Task", "--kwargs", f'{{"x": {HUGE_INT}}}'],
            "digits",
            id="execute-huge-int",
        ),
        pytest.param(
            ["enqueue", "tapp.doctypes.Task", "--timeout", "abc"], "--timeout", id="timeout-text"
        ),
        pytest.param(
            ["enqueue", "tapp.doctypes.Task", "--timeout", "9" * 30], "--timeout", id="timeout-huge"
        ),
        pytest.param(
            ["enqueue", "tapp.doctypes.Task", "--timeout", HUGE_INT],
            "--timeout",
            id="timeout-huger",
        ),
        pytest.param(
            ["enqueue", "tapp.doctypes.Task", "--timeout", "-2"], "--timeout", id="timeout-negative"
        ),
        pytest.param(["jobs", "list", "--limit", "abc"], "--limit", id="limit-text"),
        pytest.param(["jobs", "list", "--limit", "0"], "--limit", id="limit-zero"),
        pytest.param(["jobs", "list", "--limit", HUGE_INT], "--limit", id="limit-huge"),
        pytest.param(["worker-pool", "--num-workers", "many"], "--num-workers", id="num-workers"),
        pytest.param(
            ["worker-pool", "--num-workers", "100000"], "--num-workers", id="num-workers-huge"
        ),
    ],
)
def test_bad_numbers_and_json_are_usage_errors(
    bench_dir: Path, args: list[str], needle: str
) -> None:
    _usage_error(bench_dir, ["--site", "s1", *args], needle)


# -- broken config files ------------------------------------------------------------------------

CONFIG_FILES = [
    pytest.param("sites/common_site_config.json", id="common"),
    pytest.param("sites/s1/site_config.json", id="site"),
]


def _break(bench: Path, relative: str, text: str) -> Path:
    path = bench / relative
    path.write_text(text)
    return path


@pytest.mark.parametrize("relative", CONFIG_FILES)
@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested", id="deep-100k"),
        pytest.param('{"x": ' + "[" * 200 + "]" * 200 + "}", "nested deeper than", id="deep-200"),
        pytest.param(f'{{"x": {HUGE_INT}}}', "digits", id="huge-int"),
        pytest.param('{"x": "\\ud800"}', "surrogate", id="lone-surrogate"),
        pytest.param('{"time_zone": "America"}', "time_zone", id="zone-folder"),
        pytest.param(b"\xff\xfe{}".decode("latin-1"), "not UTF-8", id="not-utf8"),
    ],
)
def test_broken_config_files_are_one_line(
    bench_dir: Path, relative: str, text: str, needle: str
) -> None:
    if text.startswith("\xff"):
        (bench_dir / relative).write_bytes(b"\xff\xfe{}")
    else:
        _break(bench_dir, relative, text)
    _fails_cleanly(bench_dir, ["--site", "s1", "migrate"], str(bench_dir / relative), needle)
    _fails_cleanly(bench_dir, ["list-apps"], str(bench_dir / relative), needle)


# -- database URLs and drivers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        pytest.param("postgresql://u@127.0.0.1/jbdb", "psycopg", "postgres", id="postgres"),
        pytest.param("mysql://u@127.0.0.1/jbdb", "pymysql", "mysql", id="mysql"),
        pytest.param("mariadb://u@127.0.0.1/jbdb", "pymysql", "mysql", id="mariadb"),
    ],
)
def test_new_site_without_the_database_driver_is_one_line(
    bench_dir: Path, tmp_path: Path, url: str, module: str, extra: str
) -> None:
    # A package of the driver's name that fails to import stands in for a missing driver.
    fake = tmp_path / "no-drivers" / module
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"raise ImportError('no module named {module}')\n")
    env = {"PYTHONPATH": str(fake.parent)}
    _fails_cleanly(
        bench_dir, ["new-site", "s3", "--db-url", url], "no driver", f"jobbench[{extra}]", env=env
    )


def test_new_site_with_a_port_that_is_not_a_number_is_one_line(bench_dir: Path) -> None:
    _fails_cleanly(
        bench_dir,
        ["new-site", "s3", "--db-url", "postgresql://u@h:port/db"],
        "not a valid database URL",
    )


# -- paths the system refuses -------------------------------------------------------------------


def test_bench_path_too_long_is_one_line(bench_dir: Path) -> None:
    _fails_cleanly(bench_dir, ["--bench", "a" * 5000, "list-sites"], "too long")


def test_init_path_too_long_is_one_line(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    assert_error(run_cli("init", "b" * 300, cwd=tmp_path), "too long")
    assert_unchanged(before, tmp_path)
