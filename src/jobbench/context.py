"""The current site: a context variable holding site, config, user, database and hooks.

Frappe keeps this in thread-locals (``frappe.local``); we use a ``ContextVar`` so threads and
asyncio tasks each see their own site. Nothing happens at import: ``init(site)`` reads the
config, ``connect()`` opens the database, ``destroy()`` closes it. ``site_context()`` does all
three around a block and restores whatever context was there before, so contexts nest and two
sites can be used one after the other (or one inside the other) without leaking state.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from jobbench.apps import app_problems, collect_hooks
from jobbench.bench import BUILTIN_APP, Bench, find_bench
from jobbench.errors import DatabaseError, DocTypeNotFoundError, SiteNotInitializedError
from jobbench.model import site as model_site
from jobbench.model.database import Database
from jobbench.utils import (
    _dict,
    import_path,
    is_time_zone,
    now_in,
    set_site_clock,
    system_time_zone,
)

if TYPE_CHECKING:
    from datetime import datetime

    from jobbench.model.document import Document
    from jobbench.model.meta import DocMeta

ADMINISTRATOR = "Administrator"
GUEST = "Guest"


class Session:
    """Who is acting: ``jobbench.session.user``."""

    def __init__(self, user: str = GUEST) -> None:
        self.user = user

    def __repr__(self) -> str:
        return f"<Session user={self.user!r}>"


TZ_CACHE_SECONDS = 30.0
_tz_cache: dict[str, tuple[str | None, float]] = {}


class SiteLocal:
    """Everything bound to the current site in this context."""

    def __init__(self, site: str, bench: Bench) -> None:
        self.conf = bench.merged_config(site)  # raises SiteNotFoundError for an unknown site
        bench.add_apps_dir_to_path()
        self.site = site
        self.bench = bench
        self.session = Session()
        self.flags = _dict()
        self.job: Any = None
        self._db: Database | None = None
        self._hooks: dict[str, Any] | None = None
        self._doctypes: dict[str, type[Document]] | None = None
        self._time_zone: str | None = None
        # Upper layers' per-context caches (enqueue's RecordBuilder): made once per context
        # instead of once per call, so a producer's thousandth enqueue costs less than its first.
        self.memo: dict[str, Any] = {}

    @property
    def db(self) -> Database:
        if self._db is None:
            raise SiteNotInitializedError(
                f"site '{self.site}' is not connected; call jobbench.connect() first"
            )
        return self._db

    @property
    def apps(self) -> list[str]:
        return [BUILTIN_APP, *[a for a in self.conf.installed_apps if a != BUILTIN_APP]]

    def connect(self) -> Database:
        if self._db is None:
            self._db = Database(self.conf.db_url)
        return self._db

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def hooks(self) -> dict[str, Any]:
        if self._hooks is None:
            self._hooks = collect_hooks(self.apps)
        return self._hooks

    def doctypes(self) -> dict[str, type[Document]]:
        """Doctype name -> class, from every app's ``doctypes`` hook (cached per context;
        imports are sys.modules hits, and metadata is cached on each class)."""
        if self._doctypes is None:
            found: dict[str, type[Document]] = {}
            for path in self.hooks().get("doctypes", []):
                cls = _import_doctype(path)
                found[cls.get_meta().doctype] = cls
            self._doctypes = found
        return self._doctypes

    def time_zone(self) -> str:
        """Site config ``time_zone`` if set, else System Settings', else the machine's zone.

        The stored zone is cached per database for a short while (a worker opens a context
        per job); saving System Settings clears the cache in this process."""
        if self._time_zone is None:
            zone = self.conf.time_zone
            if not zone and self._db is not None:
                cached = _tz_cache.get(self.conf.db_url)
                if cached and cached[1] > time.monotonic():
                    zone = cached[0]
                else:
                    zone = _stored_time_zone(self._db)
                    _tz_cache[self.conf.db_url] = (zone, time.monotonic() + TZ_CACHE_SECONDS)
            # An unknown stored zone (db.set_value skips validation) must not break every save.
            self._time_zone = zone if zone and is_time_zone(zone) else system_time_zone()
        return self._time_zone

    def reset_time_zone(self) -> None:
        self._time_zone = None
        _tz_cache.pop(self.conf.db_url, None)

    def now(self) -> datetime:
        return now_in(self.time_zone())


def _import_doctype(path: str) -> type[Document]:
    from jobbench.errors import AppError
    from jobbench.model.document import Document

    try:
        cls = import_path(path)
    except (ImportError, AttributeError) as exc:
        raise AppError(
            f"doctype class '{path}' (from a doctypes hook) cannot be imported: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Document)):
        raise AppError(f"doctypes hook entry '{path}' is not a Document subclass")
    return cls


def _stored_time_zone(db: Database) -> str | None:
    from jobbench.model import query

    try:
        with db.atomic():  # a savepoint: on a fresh site the table may not exist yet
            value = query.get_single_value(db, "System Settings", "time_zone")
    except (DatabaseError, DocTypeNotFoundError):
        return None
    except Exception as exc:  # noqa: BLE001 - a missing table surfaces as a driver error
        if type(exc).__module__.startswith("sqlalchemy"):
            return None
        raise
    return str(value) if value else None


_current: ContextVar[SiteLocal | None] = ContextVar("jobbench_site", default=None)


def current() -> SiteLocal:
    """The current site's state; raises SiteNotInitializedError when there is none."""
    local = _current.get()
    if local is None:
        raise SiteNotInitializedError(model_site.NO_SITE)
    return local


def _site_now() -> datetime | None:
    local = _current.get()
    return None if local is None else local.now()


def init(site: str | None = None, bench_path: str | os.PathLike[str] | None = None) -> SiteLocal:
    """Make ``site`` the current site (config read, no database opened yet)."""
    bench = find_bench(bench_path)
    site = site or os.environ.get("JOBBENCH_SITE") or bench.common_config().default_site
    if not site:
        raise SiteNotInitializedError("no site given: pass a site name or set $JOBBENCH_SITE")
    local = SiteLocal(site, bench)
    previous = _current.get()
    if previous is not None:
        previous.close()
    _current.set(local)
    return local


def connect(site: str | None = None) -> Database:
    """Open the current site's database and act as Administrator (as Frappe's connect does)."""
    local = init(site) if site is not None else current()
    db = local.connect()
    local.session.user = ADMINISTRATOR
    return db


def destroy() -> None:
    """Close the database (uncommitted work is rolled back) and forget the current site."""
    local = _current.get()
    if local is not None:
        local.close()
    _current.set(None)


@contextmanager
def site_context(
    site: str,
    bench_path: str | os.PathLike[str] | Bench | None = None,
    user: str | None = None,
) -> Iterator[SiteLocal]:
    """init + connect (+ set_user) for a block; restores the previous context afterwards.

    ``bench_path`` may be the Bench itself: the worker's executor opens a context per job
    and has its bench already, so it skips find_bench's lookup and stat."""
    bench = bench_path if isinstance(bench_path, Bench) else find_bench(bench_path)
    local = SiteLocal(site, bench)
    token = _current.set(local)
    try:
        local.connect()
        local.session.user = user or ADMINISTRATOR
        yield local
    finally:
        local.close()
        _current.reset(token)


@contextmanager
def tolerant_site_context(
    site: str, bench_path: str | os.PathLike[str] | None = None
) -> Iterator[tuple[SiteLocal, dict[str, str]]]:
    """A site context without the site's apps that cannot be loaded, and which those are
    (app -> reason): doctor, list-apps and uninstall-app must work on a site whose app folder
    is gone or broken, to name it and to let it be uninstalled."""
    with site_context(site, bench_path) as local:
        problems = app_problems([a for a in local.apps if a != BUILTIN_APP])
        if problems:
            apps = [a for a in local.conf.installed_apps if a not in problems]
            local.conf["installed_apps"] = apps
        yield local, problems


def set_user(user: str) -> None:
    current().session.user = user


def get_hooks(hook: str | None = None, default: Any = None) -> Any:
    """One merged hook (a list or dict), or every hook when ``hook`` is None."""
    hooks = current().hooks()
    if hook is None:
        return copy.deepcopy(hooks)
    return copy.deepcopy(hooks.get(hook, [] if default is None else default))


def get_meta(doctype: str) -> DocMeta:
    return get_controller(doctype).get_meta()


def get_controller(doctype: str) -> type[Document]:
    local = current()
    cls = local.doctypes().get(doctype)
    if cls is None:
        raise DocTypeNotFoundError(
            f"doctype '{doctype}' is not defined by any app installed on site '{local.site}' "
            f"(apps: {', '.join(local.apps)})"
        )
    return cls


# The layers below this module reach the current site through these hooks (they never import
# it): the model for documents and queries, utils for now_datetime().
model_site.register(current, get_meta)
set_site_clock(_site_now)


class _Proxy:
    """A module-level stand-in that forwards attribute access to the current context."""

    def __init__(self, resolve: Any, label: str) -> None:
        object.__setattr__(self, "_resolve", resolve)
        object.__setattr__(self, "_label", label)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resolve(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._resolve(), name, value)

    def __getitem__(self, key: str) -> Any:
        return self._resolve()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._resolve()

    def __repr__(self) -> str:
        local = _current.get()
        return f"<jobbench.{self._label} for {local.site if local else 'no site'}>"


local: Any = _Proxy(current, "local")
db: Any = _Proxy(lambda: current().db, "db")
conf: Any = _Proxy(lambda: current().conf, "conf")
session: Any = _Proxy(lambda: current().session, "session")
flags: Any = _Proxy(lambda: current().flags, "flags")
