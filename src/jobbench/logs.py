"""jobbench's logging: Python ``logging`` under one hierarchy, and its two line formats.

Every process logs through loggers named ``jobbench.<part>`` (``jobbench.worker``,
``jobbench.scheduler``, ``jobbench.job``, ``jobbench.pool``, ``jobbench.start``), so an app that
embeds jobbench routes them like any other library's. A record may carry structured fields
(``extra={"event": ..., "fields": {...}}``); the JSON format writes them as keys, the text
format writes only the message.

* ``text`` (default): ``HH:MM:SS message``, control characters escaped (job ids, methods and
  messages come from enqueue callers: none may forge a line or send escape sequences).
* ``json``: one object per line with stable keys ``ts`` (ISO 8601, UTC), ``level``,
  ``logger``, ``event``, ``message``, then the record's fields (a job end: ``job_id``,
  ``method``, ``queue``, ``site``, ``duration``, ``outcome``, ``exc_type``, ``exc_message``,
  ``retry``, ``retries``, ``retry_in``).

The jobbench commands (``worker``, ``worker-pool``, ``schedule``, ``start``) call ``configure``
with ``--log-format`` or the ``log_format`` config key. A Worker or Scheduler run from Python
calls ``ensure_handler``: it installs the text handler only when neither the ``jobbench``
logger nor the root logger has a handler (so the output is what it always was), and otherwise
leaves the routing to the app.

The worker writes its lines in batches (one write for all the jobs whose ends it read at
once): ``batch()`` holds the lines of the handler installed here until the batch ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from jobbench.utils import printable

ROOT = "jobbench"
FORMATS = ("text", "json")


def get_logger(part: str) -> logging.Logger:
    return logging.getLogger(f"{ROOT}.{part}")


class TextFormatter(logging.Formatter):
    """``HH:MM:SS message`` (local time, as jobbench always printed), escaped to one line."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # strftime once a second, not once a line
            self._second, self._stamp = second, time.strftime("%H:%M:%S", time.localtime(second))
        text = f"{self._stamp} {printable(record.getMessage())}"
        if record.exc_info:  # each line escaped, as the message is
            lines = self.formatException(record.exc_info).splitlines()
            text += "".join(f"\n{printable(line)}" for line in lines)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line (json escapes newlines and control characters)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC)
        data: dict[str, Any] = {
            "ts": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            data.update(fields)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, inside ``batch()``, keeps lines and writes them at once."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self._held: list[str] | None = None
        self._depth = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            if self._held is not None:
                self._held.append(line)
                return
            self.stream.write(line + "\n")
            self.flush()
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)

    def hold_lines(self) -> None:
        with self.lock or contextlib.nullcontext():
            self._depth += 1
            if self._held is None:
                self._held = []

    def write_held(self) -> None:
        with self.lock or contextlib.nullcontext():
            self._depth -= 1
            if self._depth > 0 or self._held is None:
                return
            held, self._held = self._held, None
            if held:
                with contextlib.suppress(Exception):  # a closed stdout: nothing to tell
                    self.stream.write("\n".join(held) + "\n")
                    self.flush()


def _ours() -> list[BatchingHandler]:
    return [h for h in logging.getLogger(ROOT).handlers if isinstance(h, BatchingHandler)]


def configure(fmt: str = "text", stream: IO[str] | None = None) -> None:
    """The jobbench commands' logging: ``fmt`` lines on stdout (``stream``), level INFO,
    not propagated (an app's root handler would print every line twice)."""
    if fmt not in FORMATS:
        from jobbench.errors import ConfigError

        raise ConfigError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    logger = logging.getLogger(ROOT)
    for handler in _ours():
        logger.removeHandler(handler)
    handler = BatchingHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def ensure_handler() -> None:
    """Install the text handler unless someone (the CLI, the app) already routes the logs."""
    if logging.getLogger(ROOT).handlers or logging.getLogger().handlers:
        return
    configure("text")


def log_format(conf: dict[str, Any], option: str | None = None) -> str:
    """``--log-format`` if given, else the ``log_format`` config key, else ``text``."""
    return option or str(conf.get("log_format") or "text")


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Lines logged inside are written together, once, when the block ends."""
    handlers = _ours()
    for handler in handlers:
        handler.hold_lines()
    try:
        yield
    finally:
        for handler in handlers:
            handler.write_held()


def emit(
    logger: logging.Logger,
    message: str,
    level: int = logging.INFO,
    event: str = "log",
    fields: dict[str, Any] | None = None,
) -> None:
    """Log ``message`` with structured ``fields``, without logging's caller lookup (a stack
    walk per line, which the worker's per-job lines do not need)."""
    if not logger.isEnabledFor(level):
        return
    if logging.getLogRecordFactory() is logging.LogRecord:
        record = _record(logger.name, level, message, event, fields)
    else:  # an app's own record factory: let it build the record
        extra = {"event": event, "fields": fields}
        record = logger.makeRecord(logger.name, level, "", 0, message, (), None, extra=extra)
    logger.handle(record)


_process = {"pid": os.getpid()}
os.register_at_fork(after_in_child=lambda: _process.update(pid=os.getpid()))
_LEVEL_NAMES = {lvl: logging.getLevelName(lvl) for lvl in (10, 20, 30, 40, 50)}
_START: float = logging._startTime  # type: ignore[attr-defined]
_FIXED: dict[str, Any] = {  # what LogRecord() sets from arguments we never pass
    "args": (),
    "pathname": "",
    "filename": "",
    "module": "",
    "exc_info": None,
    "exc_text": None,
    "stack_info": None,
    "lineno": 0,
    "funcName": None,
    "threadName": None,
    "processName": None,
    "taskName": None,  # Python 3.12+
}


def _record(
    name: str, level: int, message: str, event: str, fields: dict[str, Any] | None
) -> logging.LogRecord:
    """A LogRecord with the attributes LogRecord() sets, filled without its per-record
    lookups (thread name, multiprocessing, getpid: a system call per line): the worker writes
    two lines per job, thousands a second. The pid is cached per process (reset at fork)."""
    record = logging.LogRecord.__new__(logging.LogRecord)
    now = time.time()
    record.__dict__ = {
        **_FIXED,
        "name": name,
        "msg": message,
        "levelname": _LEVEL_NAMES.get(level) or logging.getLevelName(level),
        "levelno": level,
        "created": now,
        "msecs": int((now - int(now)) * 1000) + 0.0,
        "relativeCreated": (now - _START) * 1000,
        "thread": threading.get_ident(),
        "process": _process["pid"],
        "event": event,
        "fields": fields,
    }
    return record
