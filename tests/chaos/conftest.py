"""Chaos suite options and fixtures: ``--chaos-long`` selects the long form (more jobs, more
slots, more fuzz examples); every test here is marked ``chaos``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Chaos, make_chaos


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.chaos)


@pytest.fixture
def long_form(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--chaos-long"))


@pytest.fixture(name="chaos", params=["sqlite", "redis"])
def chaos_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chaos]:
    """A fresh bench with site1 running the chaos app, on the SQLite or the Redis broker."""
    yield from make_chaos(request.param, tmp_path)


@pytest.fixture(name="chaos_sqlite")
def chaos_sqlite_fixture(tmp_path: Path) -> Iterator[Chaos]:
    yield from make_chaos("sqlite", tmp_path)
