"""Run the ``jobbench`` command line as a real subprocess and inspect what it left behind."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

Snapshot = dict[str, bytes | None]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without any JOBBENCH_* variable, plus ``extra``.

    PYTHONSAFEPATH keeps the current folder off sys.path, as for the installed ``jobbench``
    script (``python -m`` would otherwise make an app importable just by standing in its
    folder); PYTHONDONTWRITEBYTECODE keeps __pycache__ out of the bench's apps/ folder.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBBENCH_")}
    env["PYTHONSAFEPATH"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def run_cli(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m jobbench ARGS`` in ``cwd`` with a clean environment (plus ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "jobbench", *map(str, args)],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the command succeeded quietly on stderr; return its stdout."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def assert_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1, nothing on stdout, stderr exactly one ``Error:`` line containing ``needles``."""
    detail = f"exit {result.returncode}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"
    assert result.returncode == 1, detail
    assert "Traceback" not in result.stderr, detail
    lines = result.stderr.splitlines()
    assert len(lines) == 1, detail
    line = lines[0]
    assert line.startswith("Error: "), detail
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert result.stdout == "", detail
    return line


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A usage mistake: exit 2, nothing on stdout, stderr exactly one ``Error:`` line (click's
    reason plus a hint) containing ``needles``; returns the line."""
    detail = f"exit {result.returncode}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"
    assert result.returncode == 2, detail
    assert "Traceback" not in result.stderr, detail
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), detail
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert result.stdout == "", detail
    return lines[0]


def snapshot(root: Path) -> Snapshot:
    """Every folder (None) and file (its bytes) under ``root``, keyed by relative path.

    __pycache__ folders are Python's, not jobbench's state, and are left out.
    """
    snap: Snapshot = {}
    if not root.exists():
        return snap
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        base = Path(dirpath)
        for name in dirnames:
            snap[str((base / name).relative_to(root)) + "/"] = None
        for name in filenames:
            path = base / name
            snap[str(path.relative_to(root))] = path.read_bytes()
    return snap


def assert_unchanged(before: Snapshot, root: Path) -> None:
    after = snapshot(root)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), (
        f"bench changed on disk: added {added}, removed {removed}, changed {changed}"
    )


def sqlite_tables(db_file: Path) -> set[str]:
    conn = sqlite3.connect(db_file)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        conn.close()
    return {row[0] for row in rows}


def sqlite_columns(db_file: Path, table: str) -> set[str]:
    conn = sqlite3.connect(db_file)
    try:
        rows = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    finally:
        conn.close()
    return {row[1] for row in rows}


def add_task_field(app_dir: Path, field_line: str) -> None:
    """Add a field to the Task doctype of an app written by conftest.write_app."""
    module = app_dir / "doctypes.py"
    text = module.read_text()
    anchor = "    done: bool = False\n"
    assert anchor in text
    module.write_text(text.replace(anchor, anchor + f"    {field_line}\n", 1))
