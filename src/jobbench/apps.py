"""Apps and their hooks (the loader; the built-in app's own hooks are jobbench/hooks.py).

An app is an importable package with a ``hooks`` module. The built-in app ``jobbench`` always
comes first, then the site's ``installed_apps`` in order. ``get_hooks(name)`` merges one hook
across apps the way Frappe does: lists are concatenated, dicts merged key by key (their list
values concatenated), and a scalar becomes a one-item list. ``write_app_files`` writes a
new app's package (``jobbench new-app``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from jobbench.errors import AppError

_HOOK_TYPES = (str, list, tuple, dict, int, float, bool)


def load_app_hooks(app: str) -> ModuleType:
    """Import ``<app>.hooks``; raise AppError saying which part is missing."""
    try:
        importlib.import_module(app)
    except ImportError as exc:
        raise AppError(
            f"app '{app}' is not importable ({exc}); install it (pip install -e PATH) "
            "or put it in the bench's apps/ folder"
        ) from exc
    except Exception as exc:  # its __init__ raised: still a bad app, not a crash
        raise AppError(f"app '{app}' failed to import: {exc!r}") from exc
    try:
        return importlib.import_module(f"{app}.hooks")
    except ModuleNotFoundError as exc:
        if exc.name != f"{app}.hooks":
            raise AppError(f"app '{app}': its hooks.py failed to import: {exc}") from exc
        raise AppError(
            f"app '{app}' has no hooks.py; add {app}/hooks.py to make it an app"
        ) from exc
    except Exception as exc:
        # "SyntaxError: '(' was never closed (hooks.py, line 1)", not the exception's repr
        raise AppError(
            f"app '{app}': its hooks.py failed to import: {type(exc).__name__}: {exc}"
        ) from exc


def app_problems(apps: list[str]) -> dict[str, str]:
    """app -> why it cannot be loaded, for every app of ``apps`` that cannot (the others are
    left out). Commands that must work on a bench with a missing or broken app (doctor,
    list-apps, uninstall-app) name the app with this instead of stopping at it."""
    problems: dict[str, str] = {}
    for app in apps:
        try:
            load_app_hooks(app)
        except AppError as exc:
            problems[app] = str(exc)
    return problems


def _append(target: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, dict):
        sub = target.setdefault(key, {})
        if not isinstance(sub, dict):
            return
        for k, v in value.items():
            _append(sub, k, v)
        return
    items = target.setdefault(key, [])
    if isinstance(items, list):
        items.extend(value if isinstance(value, list | tuple) else [value])


# Keyed by the module objects themselves (not their ids): holding them keeps an id from being
# reused by a later, different module (tests re-import apps of the same name), which would
# hand out another app's hooks.
_merged_cache: dict[tuple[ModuleType, ...], dict[str, Any]] = {}


def collect_hooks(apps: list[str]) -> dict[str, Any]:
    """All public names of every app's hooks module, merged in app order.

    Cached per set of loaded hooks modules (a re-imported module is a new key); the result is
    shared, so callers must not mutate it (``jobbench.get_hooks`` hands out copies)."""
    modules = [load_app_hooks(app) for app in apps]
    key = tuple(modules)
    cached = _merged_cache.get(key)
    if cached is None:
        cached = _merge_modules(modules)
        _merged_cache[key] = cached
    return cached


def _merge_modules(modules: list[ModuleType]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for module in modules:
        for key, value in vars(module).items():
            # Only data counts as a hook; imports (modules, functions, __future__) do not.
            if key.startswith("_") or not isinstance(value, _HOOK_TYPES):
                continue
            _append(merged, key, value)
    return merged


# -- new-app: the files of a new app ----------------------------------------------------------
_APP_FILES = {
    "__init__.py": '''"""{app}: a jobbench app (made by ``jobbench new-app {app}``)."""

__version__ = "0.0.1"
''',
    "hooks.py": '''"""Hooks of {app}: what it adds to every site it is installed on.

Read again by every ``jobbench --site SITE migrate``.
"""

doctypes = ["{app}.item.Item"]

# Scheduled jobs: uncomment, then run `jobbench --site SITE migrate` to create their Scheduled
# Job Types; `jobbench schedule` (or `jobbench start`) enqueues them when due. One method has
# one schedule: list it under one key only.
# scheduler_events = {{
#     "hourly": ["{app}.tasks.count_open_items"],
#     # "all": [...]          every scheduler_interval seconds
#     # "daily_long": [...]   daily, on the long queue
#     # "cron": {{"*/15 * * * *": [...]}}
# }}
''',
    "tasks.py": '''"""Functions of {app} to run as background jobs (or on a schedule, see hooks.py).

    jobbench --site SITE enqueue {app}.tasks.add_item --kwargs '{{"title": "First"}}'
    jobbench worker --burst

From Python: ``frappe.enqueue("{app}.tasks.add_item", title="First")``.
"""

from __future__ import annotations

import jobbench as frappe


def add_item(title: str) -> str:
    """Create a {doctype}: the worker commits it when the job succeeds."""
    doc = frappe.new_doc("{doctype}", title=title)
    doc.insert()
    return str(doc.name)


def count_open_items() -> int:
    """A job for scheduler_events (hooks.py)."""
    return int(frappe.db.count("{doctype}", {{"status": "Open"}}))
''',
    "item.py": '''"""The {doctype} doctype: typed fields; `jobbench migrate` creates its table."""

from __future__ import annotations

from jobbench.model import Document, Field


class Item(Document):
    doctype = "{doctype}"
    naming = "ITEM-.####"

    title: str  # no default: required
    status: str = Field("Open", options=["Open", "Done"], index=True)

    def validate(self) -> None:
        self.title = self.title.strip()
''',
}


def app_doctype(app: str) -> str:
    """The example doctype of a new app, named after the app so two new apps never share a
    doctype (and a table) on one site: ``my_app`` -> ``My App Item``."""
    return " ".join(part.capitalize() for part in app.split("_") if part) + " Item"


def write_app_files(package: Path, app: str) -> None:
    """Write the files of a new app into the (new, empty) folder ``package``."""
    values = {"app": app, "doctype": app_doctype(app)}
    for name, template in _APP_FILES.items():
        (package / name).write_text(template.format(**values), encoding="utf-8")
