"""Progress bars appear only on a terminal and only for more than one item."""

from __future__ import annotations

import io
import sys

import pytest

from jobbench.cli.main import progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    items = ["a", "b", "c"]
    assert progress(items, "Working") is items


def test_no_bar_for_a_single_item_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Tty())
    items = ["only"]
    assert progress(items, "Working") is items


def test_a_bar_on_a_terminal_still_yields_every_item(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    items = ["a", "b", "c"]
    wrapped = progress(items, "Working")
    assert wrapped is not items
    assert list(wrapped) == items
