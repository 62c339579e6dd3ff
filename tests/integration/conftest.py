"""Fixtures for the integration tests: an open site context, a peek from a second connection,
the test app's hook recorder, extra apps written into the bench, and a second site."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import jobbench
from jobbench.bench import Bench
from jobbench.context import SiteLocal


@pytest.fixture
def ctx(site: str, bench: Bench) -> Iterator[SiteLocal]:
    """An open site context on ``site`` (nothing committed unless the test commits)."""
    with jobbench.site_context(site, bench.path) as local:
        yield local


@pytest.fixture
def peek(site: str, bench: Bench) -> Callable[..., Any]:
    """``peek(fn)`` runs ``fn()`` in a second, separate site context (its own connection), so
    it sees only committed data."""

    def run(fn: Callable[[], Any], site_name: str | None = None) -> Any:
        with jobbench.site_context(site_name or site, bench.path):
            return fn()

    return run


@pytest.fixture
def calls(site: str) -> list[str]:
    """The test app's hook recorder (tapp.doctypes.CALLS), emptied."""
    recorder: list[str] = importlib.import_module("tapp.doctypes").CALLS
    recorder.clear()
    return recorder


@pytest.fixture
def make_app(bench: Bench) -> Iterator[Callable[..., Path]]:
    """``make_app(name, hooks=..., **modules)`` writes a package into the bench's apps/ folder;
    its modules are dropped from sys.modules afterwards."""
    names: list[str] = []

    def make(name: str, hooks: str = "", **modules: str) -> Path:
        pkg = bench.path / "apps" / name
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "hooks.py").write_text(textwrap.dedent(hooks))
        for module, source in modules.items():
            (pkg / f"{module}.py").write_text(textwrap.dedent(source))
        names.append(name)
        forget_modules(name)
        return pkg

    yield make
    for name in names:
        forget_modules(name)


def forget_modules(package: str) -> None:
    """Drop a package and its submodules from sys.modules so the next import reads the files."""
    for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[mod]
    importlib.invalidate_caches()


@pytest.fixture
def site2(site: str, bench: Bench, db_url: str, fresh_server_db: Any) -> str:
    """A second site 'site2' on its own fresh database (same backend as ``site``), with tapp."""
    from jobbench.sites import install_app, new_site

    if db_url.startswith("sqlite"):
        url = None
    else:
        url = fresh_server_db("postgres" if db_url.startswith("postgresql") else "mariadb")
    new_site(bench, "site2", db_url=url)
    install_app(bench, "site2", "tapp")
    return "site2"
