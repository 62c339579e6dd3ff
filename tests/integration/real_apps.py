"""Stub copies of Frappe, ERPNext and HRMS for the real-hooks tests (test_real_app_hooks.py).

``tests/data/real_scheduler_events/<app>.json`` holds the real ``scheduler_events`` of each
app. ``write_stub_apps`` writes the packages ``frappe``, ``erpnext`` and ``hrms`` into a bench's
``apps/`` folder: a ``hooks.py`` whose ``scheduler_events`` is exactly that JSON, and at every
hooked dotted path a stub function that appends ``<dotted path>\\t<queue>`` to
``<bench>/real_marks.log`` (the queue of the running job, "-" outside a job).

``real`` is parametrised over the SQLite and Redis brokers (modelled on ``make_sched``): a fresh
bench whose site ``site1`` (time zone Asia/Kolkata) has the three apps installed one by one;
``real_sqlite`` is the same on SQLite only. Afterwards the stub packages leave sys.modules and
the bench's apps folder leaves sys.path.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobbench.sites import MigrateReport

from .scheduler_helpers import SITE, ZONE, Sched, broker_bench

DATA = Path(__file__).resolve().parents[1] / "data" / "real_scheduler_events"
APPS = ("frappe", "erpnext", "hrms")  # in install order
MARKS = "real_marks.log"

STUB_HEADER = '''"""A stub of a real app's module: each function records its run and queue."""

from pathlib import Path

import jobbench


def _mark(path):
    job = jobbench.job
    queue = job.queue if job is not None else "-"
    with open(Path(jobbench.local.bench.path) / "real_marks.log", "a") as f:
        f.write(f"{path}\\t{queue}\\n")
'''


def load_events(app: str) -> dict[str, Any]:
    """The real ``scheduler_events`` of ``app``, as stored in tests/data."""
    events: dict[str, Any] = json.loads((DATA / f"{app}.json").read_text())
    return events


def hooked_methods(events: dict[str, Any]) -> list[str]:
    """Every dotted path in a ``scheduler_events`` dict (cron keys hold {expr: [methods]})."""
    methods: list[str] = []
    for value in events.values():
        groups = value.values() if isinstance(value, dict) else [value]
        for group in groups:
            methods.extend(group)
    return methods


def write_stub_app(apps_dir: Path, app: str) -> Path:
    """Write package ``app``: hooks.py with the real scheduler_events, a stub per method."""
    events = load_events(app)
    pkg = apps_dir / app
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(f"scheduler_events = {events!r}\n")
    modules: dict[str, list[str]] = {}
    for method in hooked_methods(events):
        module, function = method.rsplit(".", 1)
        modules.setdefault(module, []).append(function)
    for module, functions in modules.items():
        parts = module.split(".")
        assert parts[0] == app, f"{app} hooks a method of another package: {module}"
        folder = apps_dir.joinpath(*parts[:-1])
        for depth in range(1, len(parts)):
            package = apps_dir.joinpath(*parts[:depth])
            assert not package.with_suffix(".py").exists(), f"{package} is a module too"
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
        assert not (folder / parts[-1]).is_dir(), f"{module} is both a module and a package"
        body = "".join(f"\n\ndef {fn}():\n    _mark({f'{module}.{fn}'!r})\n" for fn in functions)
        (folder / f"{parts[-1]}.py").write_text(STUB_HEADER + body)
    return pkg


def write_stub_apps(apps_dir: Path) -> None:
    for app in APPS:
        write_stub_app(apps_dir, app)
    forget_stub_apps()


def forget_stub_apps() -> None:
    """Drop the stub packages and their submodules from sys.modules."""
    for mod in [m for m in sys.modules if m.split(".", 1)[0] in APPS]:
        del sys.modules[mod]
    importlib.invalidate_caches()


@dataclass
class Real(Sched):
    """A bench with ``site1`` running the stub frappe, erpnext and hrms, on one broker kind."""

    installs: dict[str, MigrateReport] = field(default_factory=dict)  # install_app's reports

    def marks_ran(self) -> list[tuple[str, str]]:
        """(dotted path, queue) of every stub call so far, in order."""
        path = self.bench.path / MARKS
        if not path.exists():
            return []
        ran = []
        for line in path.read_text().splitlines():
            method, queue = line.split("\t")
            ran.append((method, queue))
        return ran


def make_real(kind: str, tmp_path: Path) -> Iterator[Real]:
    from jobbench.sites import install_app, new_site

    with broker_bench(kind, tmp_path / "rb", write_stub_apps, forget_stub_apps) as bench:
        new_site(bench, SITE)
        bench.update_site_config(SITE, {"time_zone": ZONE})
        real = Real(kind, bench, tmp_path)
        for app in APPS:
            real.installs[app] = install_app(bench, SITE, app)
        yield real


@pytest.fixture(name="real", params=["sqlite", "redis"])
def real_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Real]:
    """A fresh bench with site1 running the three stub apps, on the SQLite or Redis broker."""
    yield from make_real(request.param, tmp_path)


@pytest.fixture(name="real_sqlite")
def real_sqlite_fixture(tmp_path: Path) -> Iterator[Real]:
    """The same bench on the SQLite broker only (for tests that involve no broker)."""
    yield from make_real("sqlite", tmp_path)
