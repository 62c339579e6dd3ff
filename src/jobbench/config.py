"""Reading, validating, merging and writing the JSON configuration files.

A bench has ``sites/common_site_config.json``; each site has ``sites/<site>/site_config.json``.
Site keys override common ones. Known keys are type-checked on every read so a typo surfaces
where it was made (file and key), not later as a strange crash in a worker. Unknown keys pass
through untouched: apps keep their own settings there, as with Frappe.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobbench.errors import ConfigError
from jobbench.utils import _dict
from jobbench.utils.files import tighten

QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")  # \Z: "$" lets a "\n" end it

Check = Callable[[Any], str | None]  # returns what was expected, or None when the value is fine


def _int(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        return None if ok else f"an integer >= {minimum}"

    return check


def _number(minimum: float) -> Check:
    def check(value: Any) -> str | None:
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)  # json reads the non-standard NaN and Infinity
            and value >= minimum
        )
        return None if ok else f"a number >= {minimum}"

    return check


def _str(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "a non-empty string"


def _flag(value: Any) -> str | None:
    return None if value in (0, 1) else "0, 1, true or false"


def _optional(check: Check) -> Check:
    def wrapped(value: Any) -> str | None:
        return None if value is None else check(value)

    return wrapped


def _str_list(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
    return None if ok else "a list of non-empty strings"


def _method_limits(value: Any) -> str | None:
    ok = isinstance(value, dict) and all(
        isinstance(k, str) and k and _int(1)(v) is None for k, v in value.items()
    )
    return None if ok else 'an object like {"myapp.tasks.sync": 1} (dotted path: limit >= 1)'


def _serializer(value: Any) -> str | None:
    return None if value in ("json", "pickle") else '"json" or "pickle"'


def _async_mode(value: Any) -> str | None:
    return None if value in ("thread", "loop") else '"thread" or "loop"'


def _log_format(value: Any) -> str | None:
    return None if value in ("text", "json") else '"text" or "json"'


def _time_zone(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "an IANA time zone name such as 'Europe/Berlin'"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America", a folder
        return "an IANA time zone name such as 'Europe/Berlin'"
    return None


def _workers(value: Any) -> str | None:
    expected = 'an object like {"myqueue": {"timeout": 5000, "background_workers": 4}}'
    if not isinstance(value, dict):
        return expected
    for name, spec in value.items():
        if not QUEUE_NAME_RE.fullmatch(name) or not isinstance(spec, dict):
            return expected
        checks = (("timeout", _int(-1)), ("background_workers", _int(1)), ("concurrency", _int(1)))
        for key, check in checks:
            if key in spec and check(spec[key]):
                return f"{expected}; '{name}.{key}' must be {check(spec[key])}"
    return None


def _host_ports(value: Any) -> str | None:
    """Frappe's ``redis_queue_sentinels``: ``["host:port", ...]`` (``[::1]:26379`` for IPv6)."""
    expected = 'a non-empty list like ["10.0.0.1:26379", "10.0.0.2:26379"]'
    if not isinstance(value, list) or not value:
        return expected
    for node in value:
        host, _, port = node.rpartition(":") if isinstance(node, str) else ("", "", "")
        if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            return expected
    return None


def _cert_reqs(value: Any) -> str | None:
    return None if value in ("required", "optional", "none") else '"required", "optional" or "none"'


# The Redis broker's connection (brokers/redis_conn.py); Frappe's names where Frappe has one.
_REDIS_KEYS: dict[str, Check] = {
    "use_rq_auth": _flag,
    "rq_username": _str,
    "rq_password": _str,
    "redis_queue_sentinel_enabled": _flag,
    "redis_queue_sentinels": _host_ports,
    "redis_queue_master_service": _str,
    "redis_queue_sentinel_username": _str,
    "redis_queue_sentinel_password": _str,
    "redis_queue_master_username": _str,
    "redis_queue_master_password": _str,
    "redis_queue_cluster": _flag,
    "redis_queue_ssl_ca_certs": _str,
    "redis_queue_ssl_certfile": _str,
    "redis_queue_ssl_keyfile": _str,
    "redis_queue_ssl_cert_reqs": _cert_reqs,
    "redis_queue_socket_timeout": _number(0.1),
    "redis_queue_socket_keepalive": _flag,
    "redis_queue_wait_replicas": _int(0),
    "redis_queue_wait_timeout": _number(0.001),
}

KNOWN_KEYS: dict[str, Check] = {
    "redis_queue": _optional(_str),
    **_REDIS_KEYS,
    "db_url": _str,
    "installed_apps": _str_list,
    "workers": _workers,
    "background_workers": _int(1),
    "async_concurrency": _int(1),
    "async_mode": _async_mode,
    "worker_heartbeat_interval": _number(0.1),
    "worker_heartbeat_ttl": _number(0.2),
    "scheduler_tick_interval": _number(0.01),
    "scheduler_interval": _int(1),
    "pause_scheduler": _flag,
    "disable_scheduler": _flag,
    "maintenance_mode": _flag,
    "time_zone": _time_zone,
    "rq_results_ttl": _int(0),
    "rq_job_failure_ttl": _int(0),
    "rq_failed_jobs_limit": _int(0),
    "max_queued_jobs": _optional(_int(1)),
    "durable_enqueue": _flag,
    "job_concurrency_limits": _method_limits,
    "job_serializer": _serializer,
    "log_format": _log_format,
    "secret_key": _str,
    "allowed_job_modules": _str_list,
    "max_payload_bytes": _int(1),
    "bench_id": _str,
    "default_site": _str,
    "dashboard_host": _str,
    "dashboard_port": _int(0),
    "dashboard_token": _str,
    "dashboard_password_hash": _str,
    "dashboard_allowed_hosts": _str_list,
    "dashboard_require_auth": _flag,
}


def validate(config: dict[str, Any], source: str) -> None:
    """Check every known key of ``config``; raise ConfigError naming ``source`` and the key."""
    for key, check in KNOWN_KEYS.items():
        if key in config:
            expected = check(config[key])
            if expected:
                raise ConfigError(
                    f"{source}: key '{key}' must be {expected}, got {config[key]!r}; "
                    "fix the value in that file"
                )


# path -> ((mtime_ns, size, inode), parsed and validated data). Workers open a site context per job;
# re-parsing unchanged files each time was a measurable share of a no-op job's cost.
_cache: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def read_json(path: Path) -> dict[str, Any]:
    """Read one config file. A missing file is an empty config; bad JSON names file and line.

    Results are cached by modification time and size; callers get their own copy."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    return copy.deepcopy(_read_cached(path, stat))


def read_json_shared(path: Path) -> dict[str, Any]:
    """Like read_json, but returns the cached object itself: callers must not mutate it.

    For the per-job hot path (a worker opens a site context for every job)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    return _read_cached(path, stat)


def _read_cached(path: Path, stat: os.stat_result) -> dict[str, Any]:
    version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    cached = _cache.get(path)
    if cached and cached[0] == version:
        return cached[1]
    data = _parse(path)
    _cache[path] = (version, data)
    return data


def _parse(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); fix the file") from exc
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} line {exc.lineno} column {exc.colno}: malformed JSON ({exc.msg}); fix the file"
        ) from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: nested too deeply to read; fix the file") from exc
    except ValueError as exc:  # the only other ValueError: Python's int-string limit
        raise ConfigError(
            f"{path}: a number has more than {sys.get_int_max_str_digits()} digits; fix the file"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a JSON object ({{...}}), got {type(data).__name__}")
    _check_shape(data, path)
    validate(data, str(path))
    tighten(path)  # it may hold secret_key: owner-only, as write_json makes it
    return data


MAX_DEPTH = 64  # far beyond any real config; deeper values would overflow deepcopy and dumps


def _check_shape(data: dict[str, Any], path: Path) -> None:
    """Refuse what parses but would break later: nesting deeper than MAX_DEPTH (copying or
    writing it back recurses) and lone surrogates from ``\\ud800`` escapes (not encodable)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{path}: nested deeper than {MAX_DEPTH} levels; fix the file")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            for text in (key, item):
                if isinstance(text, str):
                    _check_text(text, path)
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))


def _check_text(text: str, path: Path) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"{path}: a string holds an invalid \\u escape (lone surrogate "
            f"{text[exc.start]!r}); fix the file"
        ) from exc


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a config file atomically (temp file + rename), so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge(common: dict[str, Any], site: dict[str, Any]) -> _dict:
    """Site keys override common keys (a shallow merge, as Frappe does)."""
    merged = _dict(common)
    merged.update(site)
    return merged
