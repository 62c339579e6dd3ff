"""Unit-test fixtures: a site on SQLite in tmp_path with the test app ``tapp`` installed."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from jobbench.bench import Bench


@pytest.fixture
def sqlite_site(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    """Site ``s1`` on SQLite with ``tapp`` installed; yields its bench."""
    from jobbench.model.database import dispose_engines
    from jobbench.sites import install_app, new_site

    monkeypatch.setattr(sys, "path", list(sys.path))  # undo the bench's apps/ insert afterwards
    new_site(bench, "s1")
    install_app(bench, "s1", "tapp")
    yield bench
    for mod in [m for m in sys.modules if m == "tapp" or m.startswith("tapp.")]:
        del sys.modules[mod]
    dispose_engines()
