"""Small helpers with no dependency on a site: attribute dicts, dotted-path import, time zones."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class _dict(dict[str, Any]):  # noqa: N801 - the name Frappe code expects
    """A dict whose keys read as attributes; a missing key reads as None (like frappe._dict)."""

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self.get(key)

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        self.pop(key, None)

    def copy(self) -> _dict:
        return _dict(self)


def import_path(path: str) -> Any:
    """Resolve ``package.module.attr`` to the object; raise ImportError/AttributeError as is."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ImportError(f"'{path}' is not a dotted path (expected package.module.name)")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def call_with_accepted_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call ``fn`` with the kwargs it accepts, dropping the others (frappe.call semantics)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in params})


def system_time_zone() -> str:
    """The machine's IANA zone name: $TZ, else /etc/localtime's target, else /etc/timezone, UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = os.readlink("/etc/localtime")
        candidates.append(target.split("zoneinfo/", 1)[-1])
    except OSError:
        pass
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    for name in candidates:
        if name and is_time_zone(name):
            return name
    return "UTC"


def is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America", a folder
        return False
    return True


def now_in(zone: str) -> datetime:
    """Naive wall-clock time in ``zone`` (documents store naive local datetimes, like Frappe)."""
    return datetime.now(ZoneInfo(zone)).replace(tzinfo=None)


def _no_site_clock() -> datetime | None:
    return None


_site_clock: Callable[[], datetime | None] = _no_site_clock


def set_site_clock(clock: Callable[[], datetime | None]) -> None:
    """``jobbench.context`` (a layer above) installs here, at import, the current site's clock:
    its now, or None outside a site context."""
    global _site_clock
    _site_clock = clock


def now_datetime() -> datetime:
    """Now, naive, in the current site's time zone (the machine's outside a site context)."""
    now = _site_clock()
    return now if now is not None else datetime.now()


def get_datetime(value: Any = None) -> datetime:
    """Frappe's ``get_datetime``: None is now, a date is its midnight, a string is parsed
    (``"2019-01-01 00:00:00"``, ISO 8601 with ``T`` or microseconds, a bare date)."""
    import datetime as dt

    if value is None:
        return now_datetime()
    if isinstance(value, datetime):
        return value
    if isinstance(value, dt.date):
        return datetime.combine(value, dt.time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            from jobbench.errors import ValidationError

            raise ValidationError(
                f"{value!r} is not a datetime (expected e.g. '2019-01-01 00:00:00')"
            ) from None
    raise TypeError(f"get_datetime() takes a datetime, date or string, not {type(value).__name__}")


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: object) -> str:
    """``value`` as text for a log line or a terminal, every control or invisible character
    escaped (``\\n``, ``\\x1b``, ``\\u202e``): a job id, method or error message that came from
    outside must not start a fake log line, move the cursor or recolour what follows."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    named = _NAMED_ESCAPES.get(ch)
    if named:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def __getattr__(name: str) -> Any:
    """``jobbench.utils.background_jobs`` without importing it first (as
    ``frappe.utils.background_jobs`` is usable after ``import frappe``)."""
    if name == "background_jobs":
        return importlib.import_module("jobbench.utils.background_jobs")
    raise AttributeError(f"module 'jobbench.utils' has no attribute {name!r}")
