"""Fixtures for the command-line acceptance tests: benches made by the CLI itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import write_app  # tests/conftest.py

from .helpers import ok, run_cli


@pytest.fixture(scope="session")
def template_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bench made once via the CLI: site ``s1`` with app ``tapp`` installed (SQLite)."""
    root = tmp_path_factory.mktemp("template")
    bench = root / "bench"
    ok(run_cli("init", bench, cwd=root))
    write_app(bench / "apps", "tapp")
    ok(run_cli("new-site", "s1", cwd=bench))
    ok(run_cli("--site", "s1", "install-app", "tapp", cwd=bench))
    return bench


@pytest.fixture
def bench_dir(template_bench: Path, tmp_path: Path) -> Path:
    """A private copy of the template bench (nothing in its files depends on its path)."""
    target = tmp_path / "bench"
    shutil.copytree(template_bench, target, symlinks=True)
    return target


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder that is not inside any bench."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder
