"""The site database: engines, one connection per site context, transactions and callbacks.

Transactions follow Frappe: a transaction begins implicitly with the first statement and ends
only with ``commit()`` or ``rollback()``. Four callback managers hang off it:

* ``before_commit`` runs just before COMMIT (its failure prevents the commit);
* ``after_commit`` runs after a successful COMMIT (this is how enqueue_after_commit works);
* ``before_rollback`` / ``after_rollback`` run around a full ROLLBACK.

A commit discards pending rollback callbacks, and a full rollback discards pending commit
callbacks. Rolling back to a savepoint touches no callbacks, as in Frappe.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.exc import DBAPIError as SADBAPIError

from jobbench.errors import (
    ConfigError,
    DatabaseError,
    DatabaseUnavailableError,
    LockWaitTimeoutError,
    QueryDeadlockError,
    QueryTimeoutError,
)
from jobbench.utils import _dict
from jobbench.utils.files import private_sqlite_file

SAVEPOINT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")  # \Z: "$" lets a "\n" end it
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


class CallbackManager:
    """An ordered list of callables run once each, then forgotten."""

    def __init__(self) -> None:
        self._functions: deque[Callable[[], Any]] = deque()

    def add(self, fn: Callable[[], Any]) -> None:
        self._functions.append(fn)

    def run(self) -> None:
        """Run every callback in order. Each runs even if an earlier one raised; the first
        exception is re-raised at the end, so a failing callback is never silent."""
        first: BaseException | None = None
        while self._functions:
            fn = self._functions.popleft()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - re-raised below after the others ran
                first = first or exc
        if first is not None:
            raise first

    def reset(self) -> None:
        self._functions.clear()

    def __len__(self) -> int:
        return len(self._functions)

    def __iter__(self) -> Iterator[Callable[[], Any]]:
        """The pending callbacks (a copy), e.g. to add one only once per transaction."""
        return iter(tuple(self._functions))


def normalize_url(db_url: str) -> sa.URL:
    """Parse a db_url and pick our drivers (psycopg 3, PyMySQL) when the URL names none."""
    try:
        url = make_url(db_url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise ConfigError(f"db_url {db_url!r} is not a valid database URL") from exc
    if url.drivername in _DRIVERS:
        url = url.set(drivername=_DRIVERS[url.drivername])
    if url.get_backend_name() in ("mysql", "mariadb") and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def display_url(url: sa.URL | str) -> str:
    url = make_url(url) if isinstance(url, str) else url
    return url.render_as_string(hide_password=True)


def _setup_sqlite(engine: Engine) -> None:
    # The site database holds job arguments, results and tracebacks: create it 0600 before
    # SQLite does (0644), on every new connection, since a site folder may be made afresh.
    path = _sqlite_file(engine.url)
    if path is not None:

        @event.listens_for(engine, "do_connect")
        def _private(*_args: Any) -> None:
            private_sqlite_file(path)

    # pysqlite's own transaction handling would defer BEGIN and break savepoints; take it over
    # (the recipe in SQLAlchemy's SQLite dialect docs). WAL lets readers run beside a writer.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.info.pop(_BEGIN_KEY, "BEGIN"))


_BEGIN_KEY = "jobbench_begin"  # Database.begin_write() asks for BEGIN IMMEDIATE here


def _sqlite_file(url: sa.URL) -> str | None:
    """The file a SQLite URL opens; None for an in-memory or URI-style database."""
    name = url.database or ""
    if not name or name == ":memory:" or url.query.get("uri") or name.startswith("file:"):
        return None
    return name


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(db_url: str) -> Engine:
    """One engine (connection pool) per URL per process, shared by every context using it."""
    with _engines_lock:
        engine = _engines.get(db_url)
        if engine is None:
            engine = _create_engine(db_url)
            _engines[db_url] = engine
        return engine


def _create_engine(db_url: str) -> Engine:
    url = normalize_url(db_url)
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            engine = sa.create_engine(url)
            _setup_sqlite(engine)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600)
    except (NoSuchModuleError, ImportError) as exc:
        extra = _EXTRAS.get(backend, backend)
        raise DatabaseError(
            f"no driver for {display_url(url)}; install it with pip install 'jobbench[{extra}]'"
        ) from exc
    return engine


def dispose_engine(db_url: str) -> None:
    """Close the pooled connections of one database and forget its engine."""
    with _engines_lock:
        engine = _engines.pop(db_url, None)
    if engine is not None:
        engine.dispose()


def dispose_engines() -> None:
    """Close every pooled connection (used after fork and in tests)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _forget_engines_in_child() -> None:
    """After a fork, the child starts its own pools: a pooled connection inherited from the
    parent (a worker parent settles jobs and relays the outbox, then forks its executor)
    shares the parent's socket or SQLite handle. ``dispose(close=False)`` drops the pool
    without closing what the parent still uses (SQLAlchemy's recipe for os.fork)."""
    global _engines_lock
    _engines_lock = threading.Lock()  # another thread may have held it at the fork
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_engines_in_child)


# Driver error codes for a statement that ran past its time limit: MariaDB's
# max_statement_time (ER_STATEMENT_TIMEOUT) and MySQL's max_execution_time (ER_QUERY_TIMEOUT).
_STATEMENT_TIMEOUT_CODES = (1969, 3024)
_QUERY_CANCELED = "57014"  # PostgreSQL: statement_timeout (or a cancel request)


def translate(exc: SADBAPIError, url: sa.URL | str) -> DatabaseError:
    """Map a driver error to our tree, so callers can retry deadlocks and timeouts without
    knowing drivers: a deadlock (1213, 40P01) is ``QueryDeadlockError``; a lock wait timeout
    (1205, 55P03, SQLite's "database is locked") is ``LockWaitTimeoutError``; a statement
    timeout (PostgreSQL 57014, MariaDB 1969, MySQL 3024) is ``QueryTimeoutError``, the parent
    of ``LockWaitTimeoutError``, as in Frappe."""
    orig = exc.orig
    code = orig.args[0] if orig is not None and orig.args else None
    state = getattr(orig, "sqlstate", None)
    message = str(orig or exc).strip().splitlines()[0]
    if code == 1213 or state == "40P01":
        return QueryDeadlockError(f"deadlock: {message}")
    if (
        code == 1205
        or state == "55P03"
        or (isinstance(orig, sqlite3.OperationalError) and "locked" in message)
    ):
        return LockWaitTimeoutError(f"lock wait timeout: {message}")
    if code in _STATEMENT_TIMEOUT_CODES or state == _QUERY_CANCELED:
        return QueryTimeoutError(f"statement timeout: {message}")
    if (
        exc.connection_invalidated
        or code in (2002, 2003, 2006, 2013)
        or (state is not None and state.startswith("08"))
    ):
        return DatabaseUnavailableError(f"database {display_url(url)} unavailable: {message}")
    return DatabaseError(f"database error on {display_url(url)}: {message}")


class Database:
    """One site's connection and its transaction, with Frappe's callback managers."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.engine = get_engine(db_url)
        self._conn: Connection | None = None
        self._savepoint_seq = 0
        self.before_commit = CallbackManager()
        self.after_commit = CallbackManager()
        self.before_rollback = CallbackManager()
        self.after_rollback = CallbackManager()

    @property
    def backend(self) -> str:
        """'sqlite', 'postgresql' or 'mysql' (MariaDB reports as mysql)."""
        name = self.engine.dialect.name
        return "mysql" if name == "mariadb" else name

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            try:
                self._conn = self.engine.connect()
            except OperationalError as exc:
                hint = (
                    "does its folder exist and is it writable?"
                    if self.backend == "sqlite"
                    else "is the server running?"
                )
                raise DatabaseUnavailableError(
                    f"cannot connect to {display_url(self.engine.url)}: "
                    f"{str(exc.orig).strip().splitlines()[0]}; {hint}"
                ) from exc
        return self._conn

    def execute(self, statement: Any, params: Any = None) -> sa.CursorResult[Any]:
        """Run one SQLAlchemy statement inside the current transaction."""
        try:
            return self.conn.execute(statement, params)
        except SADBAPIError as exc:
            if isinstance(exc, sa.exc.IntegrityError):
                raise  # callers turn these into DuplicateEntryError with the doctype's name
            raise translate(exc, self.engine.url) from exc

    def sql(
        self, query: str, values: dict[str, Any] | None = None, *, as_dict: bool = False
    ) -> Any:
        """Run raw SQL with named parameters (``:name``); return rows (dicts with as_dict)."""
        result = self.execute(sa.text(query), values or {})
        if not result.returns_rows:
            return []
        if as_dict:
            return [_dict(row._mapping) for row in result]
        return [tuple(row) for row in result]

    def in_transaction(self) -> bool:
        """Whether this context's connection has a transaction open (uncommitted work)."""
        return self._conn is not None and self._conn.in_transaction()

    def commit(self) -> None:
        self.before_commit.run()
        if self._conn is not None and self._conn.in_transaction():
            try:
                self._conn.commit()
            except SADBAPIError as exc:
                raise translate(exc, self.engine.url) from exc
        self.before_rollback.reset()
        self.after_rollback.reset()
        self.after_commit.run()

    def rollback(self, *, save_point: str | None = None) -> None:
        if save_point is not None:
            name = _savepoint_name(save_point, self.engine.dialect)
            self.execute(sa.text(f"ROLLBACK TO SAVEPOINT {name}"))
            return
        self.before_rollback.run()
        if self._conn is not None and self._conn.in_transaction():
            self._conn.rollback()
        self.before_commit.reset()
        self.after_commit.reset()
        self.after_rollback.run()

    def savepoint(self, save_point: str) -> None:
        self.execute(sa.text(f"SAVEPOINT {_savepoint_name(save_point, self.engine.dialect)}"))

    def release_savepoint(self, save_point: str) -> None:
        name = _savepoint_name(save_point, self.engine.dialect)
        self.execute(sa.text(f"RELEASE SAVEPOINT {name}"))

    def begin_write(self) -> None:
        """Make the next transaction take the write lock at its start (SQLite's BEGIN
        IMMEDIATE), for a read-then-write that another process writes beside: a deferred
        SQLite transaction whose snapshot another writer has moved past fails its first write
        at once ("database is locked"); an immediate one waits for the lock instead. A no-op
        inside a transaction and on servers, whose row locks do this job."""
        if self.backend == "sqlite" and not self.conn.in_transaction():
            self.conn.info[_BEGIN_KEY] = "BEGIN IMMEDIATE"

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run a block under a savepoint: on error, undo just the block, then re-raise.

        Each block gets its own savepoint name: MySQL replaces a savepoint of the same name,
        which would break nesting."""
        self._savepoint_seq += 1
        save_point = f"jobbench_sp{self._savepoint_seq}"
        self.savepoint(save_point)
        try:
            yield
        except BaseException:
            self.rollback(save_point=save_point)
            raise
        self.release_savepoint(save_point)

    def close(self) -> None:
        """Roll back anything uncommitted (without callbacks) and return the connection."""
        conn, self._conn = self._conn, None
        for manager in (self.before_commit, self.after_commit):
            manager.reset()
        for manager in (self.before_rollback, self.after_rollback):
            manager.reset()
        if conn is not None:
            with contextlib.suppress(SADBAPIError):  # already gone: the pool discards it
                conn.close()

    # Document-level helpers live in query.py; these forward so `jobbench.db.x` works.
    def get_value(
        self, doctype: str, filters: Any = None, fieldname: Any = "name", **kwargs: Any
    ) -> Any:
        from jobbench.model import query

        return query.get_value(self, doctype, filters, fieldname, **kwargs)

    def get_single_value(self, doctype: str, fieldname: str) -> Any:
        from jobbench.model import query

        return query.get_single_value(self, doctype, fieldname)

    def set_value(
        self, doctype: str, name: Any, fieldname: Any, value: Any = None, **kwargs: Any
    ) -> None:
        from jobbench.model import query

        query.set_value(self, doctype, name, fieldname, value, **kwargs)

    def exists(self, doctype: str, filters: Any = None) -> str | None:
        from jobbench.model import query

        return query.exists(self, doctype, filters)

    def count(self, doctype: str, filters: Any = None) -> int:
        from jobbench.model import query

        return query.count(self, doctype, filters)

    def get_all(self, doctype: str, **kwargs: Any) -> list[Any]:
        from jobbench.model import query

        return query.get_all(self, doctype, **kwargs)

    def delete(self, doctype: str, filters: Any = None) -> int:
        from jobbench.model import query

        return query.delete(self, doctype, filters)


def _savepoint_name(name: str, dialect: sa.Dialect) -> str:
    """The name checked, then quoted: a reserved word ('outer', 'select') is a fine name."""
    if not SAVEPOINT_RE.fullmatch(name):
        raise ValueError(f"invalid savepoint name {name!r}: use letters, digits and _")
    return str(dialect.identifier_preparer.quote_identifier(name))
