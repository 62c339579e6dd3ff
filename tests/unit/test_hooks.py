"""Loading apps' hooks modules and merging hooks across apps (Frappe's semantics)."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobbench.apps import collect_hooks, load_app_hooks
from jobbench.errors import AppError, JobbenchError

MakeApp = Callable[..., str]


@pytest.fixture
def make_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeApp]:
    """``make_app(hooks=..., init=..., with_hooks=True)`` -> name of a new, unique package."""
    made: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(hooks: str = "", init: str = "", with_hooks: bool = True) -> str:
        name = f"jbtest_app_{uuid.uuid4().hex[:10]}"
        pkg = tmp_path / name
        pkg.mkdir()
        (pkg / "__init__.py").write_text(textwrap.dedent(init))
        if with_hooks:
            (pkg / "hooks.py").write_text(textwrap.dedent(hooks))
        made.append(name)
        return name

    yield make
    for mod in [m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in made)]:
        del sys.modules[mod]


# --- load_app_hooks --------------------------------------------------------------------------


def test_load_app_hooks_returns_the_hooks_module(make_app: MakeApp) -> None:
    app = make_app('doctypes = ["x.y.Z"]\n')

    module = load_app_hooks(app)

    assert module.__name__ == f"{app}.hooks"
    assert module.doctypes == ["x.y.Z"]


def test_load_app_hooks_of_builtin_app() -> None:
    module = load_app_hooks("jobbench")

    assert "jobbench.doctypes.system_settings.SystemSettings" in module.doctypes


def test_app_that_is_not_importable(make_app: MakeApp) -> None:
    missing = f"jbtest_missing_{uuid.uuid4().hex[:10]}"

    with pytest.raises(AppError) as info:
        load_app_hooks(missing)

    message = str(info.value)
    assert f"app '{missing}' is not importable" in message
    assert "apps/" in message  # says how to fix it


def test_app_without_hooks_module(make_app: MakeApp) -> None:
    app = make_app(with_hooks=False)

    with pytest.raises(AppError, match=f"app '{app}' has no hooks.py"):
        load_app_hooks(app)


def test_hooks_module_that_raises(make_app: MakeApp) -> None:
    app = make_app("raise RuntimeError('boom in hooks')\n")

    with pytest.raises(AppError) as info:
        load_app_hooks(app)

    assert f"app '{app}': its hooks.py failed to import" in str(info.value)
    assert "boom in hooks" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_hooks_module_with_syntax_error(make_app: MakeApp) -> None:
    app = make_app("doctypes = [\n")

    with pytest.raises(AppError, match=f"app '{app}': its hooks.py failed to import"):
        load_app_hooks(app)


def test_hooks_module_importing_a_missing_module(make_app: MakeApp) -> None:
    # Not "has no hooks.py": the hooks file exists, its own import is what fails.
    app = make_app("import jbtest_no_such_module_xyz\n")

    with pytest.raises(AppError) as info:
        load_app_hooks(app)

    assert "failed to import" in str(info.value)
    assert "jbtest_no_such_module_xyz" in str(info.value)
    assert "has no hooks.py" not in str(info.value)


def test_app_package_whose_init_raises(make_app: MakeApp) -> None:
    app = make_app(init="raise RuntimeError('broken package')\n")

    with pytest.raises(AppError) as info:
        load_app_hooks(app)

    assert f"app '{app}'" in str(info.value)
    assert "broken package" in str(info.value)


def test_app_error_is_a_jobbench_error() -> None:
    assert issubclass(AppError, JobbenchError)


# --- collect_hooks ---------------------------------------------------------------------------


def test_lists_concatenate_in_app_order(make_app: MakeApp) -> None:
    first = make_app('doctypes = ["a.A", "a.B"]\nbefore_job = ["a.before"]\n')
    second = make_app('doctypes = ["b.C"]\n')

    hooks = collect_hooks([first, second])

    assert hooks["doctypes"] == ["a.A", "a.B", "b.C"]
    assert hooks["before_job"] == ["a.before"]
    assert collect_hooks([second, first])["doctypes"] == ["b.C", "a.A", "a.B"]


def test_scalars_and_tuples_become_lists(make_app: MakeApp) -> None:
    first = make_app('after_job = "a.after"\nflag = 1\n')
    second = make_app('after_job = ("b.after1", "b.after2")\nflag = True\n')

    hooks = collect_hooks([first, second])

    assert hooks["after_job"] == ["a.after", "b.after1", "b.after2"]
    assert hooks["flag"] == [1, True]


def test_dicts_merge_key_wise_with_list_values_concatenated(make_app: MakeApp) -> None:
    first = make_app(
        """
        scheduler_events = {
            "daily": ["a.daily"],
            "cron": {"*/5 * * * *": ["a.every5"]},
        }
        """
    )
    second = make_app(
        """
        scheduler_events = {
            "daily": "b.daily",
            "hourly": ["b.hourly"],
            "cron": {"*/5 * * * *": ["b.every5"], "0 1 * * *": "b.one"},
        }
        """
    )

    hooks = collect_hooks([first, second])

    assert hooks["scheduler_events"] == {
        "daily": ["a.daily", "b.daily"],
        "hourly": ["b.hourly"],
        "cron": {"*/5 * * * *": ["a.every5", "b.every5"], "0 1 * * *": ["b.one"]},
    }


def test_non_data_names_are_ignored(make_app: MakeApp) -> None:
    app = make_app(
        """
        from __future__ import annotations

        import os
        import json as _json
        from os.path import join

        def helper():
            return 1

        class Thing:
            pass

        _private = ["x"]
        doctypes = ["a.A"]
        """
    )

    hooks = collect_hooks([app])

    assert hooks == {"doctypes": ["a.A"]}


def test_collect_hooks_does_not_alias_the_apps_lists(make_app: MakeApp) -> None:
    first = make_app('doctypes = ["a.A"]\n')
    second = make_app('doctypes = ["b.B"]\n')

    collect_hooks([first, second])

    assert sys.modules[f"{first}.hooks"].doctypes == ["a.A"]
    assert collect_hooks([first])["doctypes"] == ["a.A"]


def test_collect_hooks_of_no_apps_is_empty() -> None:
    assert collect_hooks([]) == {}


def test_collect_hooks_fails_on_a_bad_app(make_app: MakeApp) -> None:
    good = make_app('doctypes = ["a.A"]\n')
    missing = f"jbtest_missing_{uuid.uuid4().hex[:10]}"

    with pytest.raises(AppError, match=missing):
        collect_hooks([good, missing])


@pytest.mark.parametrize("name", ["", ".relative"])
def test_app_name_that_is_no_module_name(name: str) -> None:
    with pytest.raises(AppError, match=f"app '{name}'"):
        load_app_hooks(name)
