"""CallbackManager: ordered, run-once callbacks that never swallow a failure."""

from __future__ import annotations

import pytest

from jobbench.model.database import CallbackManager


def test_callbacks_run_in_the_order_added() -> None:
    calls: list[int] = []
    manager = CallbackManager()
    for i in range(5):
        manager.add(lambda i=i: calls.append(i))

    manager.run()

    assert calls == [0, 1, 2, 3, 4]


def test_callbacks_run_once_then_are_forgotten() -> None:
    calls: list[str] = []
    manager = CallbackManager()
    manager.add(lambda: calls.append("a"))
    assert len(manager) == 1

    manager.run()
    manager.run()

    assert calls == ["a"]
    assert len(manager) == 0


def test_same_function_added_twice_runs_twice() -> None:
    calls: list[str] = []
    manager = CallbackManager()

    def fn() -> None:
        calls.append("x")

    manager.add(fn)
    manager.add(fn)
    manager.run()

    assert calls == ["x", "x"]


def test_reset_discards_pending_callbacks() -> None:
    calls: list[str] = []
    manager = CallbackManager()
    manager.add(lambda: calls.append("a"))
    manager.add(lambda: calls.append("b"))

    manager.reset()
    manager.run()

    assert calls == []
    assert len(manager) == 0


def test_callback_added_while_running_runs_in_the_same_run() -> None:
    calls: list[str] = []
    manager = CallbackManager()

    def first() -> None:
        calls.append("first")
        manager.add(lambda: calls.append("added"))

    manager.add(first)
    manager.add(lambda: calls.append("second"))
    manager.run()

    assert calls == ["first", "second", "added"]
    assert len(manager) == 0


def test_every_callback_runs_and_the_first_exception_is_reraised() -> None:
    calls: list[str] = []
    manager = CallbackManager()

    def fail(exc: Exception) -> None:
        calls.append(str(exc))
        raise exc

    manager.add(lambda: calls.append("ok1"))
    manager.add(lambda: fail(ValueError("first")))
    manager.add(lambda: calls.append("ok2"))
    manager.add(lambda: fail(KeyError("second")))
    manager.add(lambda: calls.append("ok3"))

    with pytest.raises(ValueError, match="first"):
        manager.run()

    assert calls == ["ok1", "first", "ok2", "'second'", "ok3"]
    assert len(manager) == 0  # nothing is left to run again


def test_after_a_failed_run_the_manager_is_reusable() -> None:
    calls: list[str] = []
    manager = CallbackManager()
    manager.add(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        manager.run()

    manager.add(lambda: calls.append("next"))
    manager.run()

    assert calls == ["next"]


def test_empty_manager_runs_without_error() -> None:
    manager = CallbackManager()
    manager.run()
    assert len(manager) == 0
