"""Apps and their hooks (the loader; the built-in app's own hooks are jobbench/hooks.py).

An app is an importable package with a ``hooks`` module. The built-in app ``jobbench`` always
comes first, then the site's ``installed_apps`` in order. ``get_hooks(name)`` merges one hook
across apps the way Frappe does: lists are concatenated, dicts merged key by key (their list
values concatenated), and a scalar becomes a one-item list.
"""

from __future__ import annotations

import importlib
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
