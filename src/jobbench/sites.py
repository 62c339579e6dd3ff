"""Site and app lifecycle: new-site, install-app, migrate, new-app, uninstall-app, remove-app.
Each either completes or changes nothing."""

from __future__ import annotations

import importlib.util
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError

from jobbench.apps import app_problems, load_app_hooks, write_app_files
from jobbench.bench import BUILTIN_APP, SITE_NAME_RE, Bench
from jobbench.context import SiteLocal, site_context, tolerant_site_context
from jobbench.errors import (
    AppError,
    DatabaseError,
    DatabaseUnavailableError,
    SiteError,
    SiteExistsError,
)
from jobbench.model import query
from jobbench.model.database import display_url, normalize_url
from jobbench.model.meta import SINGLES
from jobbench.model.schema import SchemaChanges, sync_tables
from jobbench.scheduler.sync import SyncReport
from jobbench.utils import system_time_zone


@dataclass
class MigrateReport:
    site: str
    doctypes: list[str] = field(default_factory=list)
    changes: SchemaChanges = field(default_factory=SchemaChanges)
    scheduler: SyncReport = field(default_factory=SyncReport)


def migrate_site(bench: Bench, site: str) -> MigrateReport:
    """Create or extend the tables of every doctype of the site's apps, then set defaults."""
    with site_context(site, bench.path) as local:
        problems = app_problems(local.apps)
        if problems:  # the first one; doctor names them all
            app, problem = next(iter(problems.items()))
            raise AppError(
                f"cannot migrate site '{site}': {problem}. Fix or restore it, or take it off "
                f"the site: jobbench --site {site} uninstall-app {app}"
            )
        return migrate_current(local)


def migrate_current(local: SiteLocal) -> MigrateReport:
    doctypes = local.doctypes()
    metas = [cls.get_meta() for cls in doctypes.values()]
    from jobbench.jobs.outbox import TABLE as OUTBOX

    changes = sync_tables(local.db, metas, extra_tables=[OUTBOX])
    from jobbench.scheduler import reschedule

    reschedule.install(local.db)
    _ensure_system_settings(local)
    local.db.commit()
    from jobbench.scheduler.sync import sync_jobs

    scheduler = sync_jobs(local)
    local.db.commit()
    return MigrateReport(
        site=local.site, doctypes=sorted(doctypes), changes=changes, scheduler=scheduler
    )


def _ensure_system_settings(local: SiteLocal) -> None:
    """A new site starts with the scheduler on and the machine's time zone recorded."""
    if query.get_single_value(local.db, "System Settings", "time_zone"):
        return
    settings = local.doctypes()["System Settings"].get_meta()
    query.write_singles(
        local.db,
        settings,
        {
            "enable_scheduler": True,
            "time_zone": local.conf.time_zone or system_time_zone(),
        },
    )


def new_site(
    bench: Bench, name: str, db_url: str | None = None, apps: Sequence[str] = ()
) -> MigrateReport:
    """Create the site folder and its database, install ``apps``; on failure undo it all."""
    if not SITE_NAME_RE.fullmatch(name):
        raise SiteError(
            f"invalid site name {name!r}: use letters, digits, '.', '-' and '_' "
            "(up to 63 characters, starting with a letter or digit)"
        )
    for app in apps:
        check_app_name(app)
    if bench.site_path(name).exists():
        raise SiteExistsError(f"site '{name}' already exists in {bench.sites_path}")
    if apps:
        bench.add_apps_dir_to_path()
        for app in apps:
            load_app_hooks(app)  # refuse a bad app before anything is created
    site_conf: dict[str, Any] = {"installed_apps": []}
    if db_url:
        site_conf["db_url"] = db_url
    apps_txt_before = bench.apps_txt.read_text() if bench.apps_txt.exists() else None
    created_db = ensure_database(db_url) if db_url else False
    try:
        bench.site_path(name).mkdir(parents=True)
        from jobbench.config import validate, write_json

        validate(site_conf, f"--db-url for site {name}")
        write_json(bench.site_config_path(name), site_conf)
        report = migrate_site(bench, name)
        for app in apps:
            install_app(bench, name, app)
        return report
    except BaseException:
        shutil.rmtree(bench.site_path(name), ignore_errors=True)
        if apps and apps_txt_before is not None:
            bench.apps_txt.write_text(apps_txt_before)
        if created_db and db_url:
            drop_database(db_url)
        raise


def install_app(bench: Bench, site: str, app: str) -> MigrateReport:
    """Check the app, add it to apps.txt and the site, migrate; restore config on failure."""
    bench.require_site(site)
    check_app_name(app)
    bench.add_apps_dir_to_path()
    load_app_hooks(app)
    site_conf = bench.site_config(site)
    apps = list(site_conf.get("installed_apps", []))
    if app in apps or app == "jobbench":
        raise AppError(f"app '{app}' is already installed on site '{site}'")
    apps_txt_before = bench.apps_txt.read_text() if bench.apps_txt.exists() else None
    bench.update_site_config(site, {"installed_apps": [*apps, app]})
    try:
        bench.add_available_app(app)
        return migrate_site(bench, site)
    except BaseException:
        bench.update_site_config(site, {"installed_apps": apps})
        if apps_txt_before is not None:
            bench.apps_txt.write_text(apps_txt_before)
        raise


# -- the app lifecycle: new-app, uninstall-app, remove-app ------------------------------------
def new_app(bench: Bench, app: str) -> Path:
    """Write a new app package into the bench's apps/ folder and list it in apps.txt."""
    check_app_name(app)
    apps_dir = bench.path / "apps"
    target = apps_dir / app
    if app == BUILTIN_APP or target.exists():
        raise AppError(f"app '{app}' already exists ({target}); choose another name")
    spec = importlib.util.find_spec(app)
    if spec is not None:  # apps/ comes first on sys.path: it would hide this module, or fail
        where = spec.origin or ", ".join(spec.submodule_search_locations or []) or "built in"
        raise AppError(
            f"'{app}' is already an importable module ({where}); choose another app name"
        )
    apps_dir.mkdir(exist_ok=True)
    # Written in a hidden sibling folder first, then renamed: a failure leaves no half app.
    staging = Path(tempfile.mkdtemp(prefix=f".{app}-", dir=apps_dir))
    try:
        write_app_files(staging, app)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    bench.add_available_app(app)
    return target


@dataclass
class UninstallReport:
    site: str
    app: str
    job_types: list[str] = field(default_factory=list)  # Scheduled Job Types deleted
    tables: list[str] = field(default_factory=list)  # tables dropped (--drop-data)
    pending_jobs: int = 0  # the app's jobs still waiting or running on the site
    app_problem: str | None = None  # why the app's code could not be loaded, if it could not


def uninstall_app(bench: Bench, site: str, app: str, drop_data: bool = False) -> UninstallReport:
    """Take ``app`` off the site: its installed_apps entry and its hooked Scheduled Job Types;
    with ``drop_data`` its doctypes' tables too. Works when the app's code is gone (except
    ``drop_data``, which needs the code to know the doctypes). Config is restored on failure."""
    apps = check_uninstall(bench, site, app)
    bench.add_apps_dir_to_path()
    report = UninstallReport(site, app, app_problem=app_problems([app]).get(app))
    if drop_data and report.app_problem:
        raise AppError(
            f"cannot drop the data of app '{app}': {report.app_problem}; without its code its "
            "doctypes are unknown. Uninstall it without --drop-data (its tables stay), or put "
            "it back first"
        )
    metas = _app_metas(app) if drop_data else []
    bench.update_site_config(site, {"installed_apps": [a for a in apps if a != app]})
    try:
        _uninstall_in_db(bench, report, metas)
    except BaseException:
        bench.update_site_config(site, {"installed_apps": apps})
        raise
    report.pending_jobs = _pending_jobs_of(bench, site, app)
    return report


def check_uninstall(bench: Bench, site: str, app: str) -> list[str]:
    """Refuse an app the site does not have; return the site's installed_apps."""
    bench.require_site(site)
    check_app_name(app)
    apps = list(bench.site_config(site).get("installed_apps", []))
    if app == BUILTIN_APP:
        raise AppError(f"the built-in app '{BUILTIN_APP}' cannot be uninstalled")
    if app not in apps:
        raise AppError(
            f"app '{app}' is not installed on site '{site}' "
            f"(installed: {', '.join([BUILTIN_APP, *apps])})"
        )
    return apps


def _app_metas(app: str) -> list[Any]:
    """The DocMeta of every doctype the app's ``doctypes`` hook lists."""
    from jobbench.utils import import_path

    hooks = load_app_hooks(app)
    paths = getattr(hooks, "doctypes", None) or []
    return [import_path(path).get_meta() for path in paths]


def _uninstall_in_db(bench: Bench, report: UninstallReport, metas: list[Any]) -> None:
    from jobbench.documents import delete_doc
    from jobbench.scheduler.sync import JOB_TYPE

    with tolerant_site_context(report.site, bench.path) as (local, _problems):
        rows = local.db.get_all(
            JOB_TYPE, filters={"scheduler_event": ("is", "not set")}, fields=["name", "method"]
        )
        for row in rows:
            if str(row.method).startswith(f"{report.app}."):
                delete_doc(JOB_TYPE, row.name)
                report.job_types.append(str(row.name))
        still_used = set(local.doctypes())  # another installed app may define the same one
        for meta in metas:
            if meta.doctype in still_used:
                continue
            if meta.issingle:
                local.db.execute(sa.delete(SINGLES).where(SINGLES.c.doctype == meta.doctype))
            else:
                meta.table.drop(local.db.conn, checkfirst=True)
                report.tables.append(meta.table_name)
        local.db.commit()


def _pending_jobs_of(bench: Bench, site: str, app: str) -> int:
    from jobbench.brokers.factory import get_broker
    from jobbench.jobs.record import PENDING_STATUSES

    broker = get_broker(bench, bench.merged_config(site))
    return sum(
        1
        for status in PENDING_STATUSES
        for record in broker.find(site=site, status=status, limit=100_000)
        if record.method.startswith(f"{app}.")
    )


def remove_app(bench: Bench, app: str) -> Path:
    """Move ``apps/<app>`` to ``archived/apps/<app>-<time>`` and drop it from apps.txt, once
    no site has it installed. Returns where it went (kept, as bench's remove-app does)."""
    check_app_name(app)
    folder = bench.path / "apps" / app
    if not folder.is_dir():
        raise AppError(
            f"app '{app}' is not in {bench.path / 'apps'}; remove-app only takes apps of the "
            "bench's apps/ folder (a pip-installed app is removed with pip uninstall)"
        )
    users = [s for s in bench.list_sites() if app in bench.site_config(s).get("installed_apps", [])]
    if users:
        raise AppError(
            f"app '{app}' is installed on site(s) {', '.join(users)}; uninstall it there "
            f"first: jobbench --site {users[0]} uninstall-app {app}"
        )
    archive = bench.path / "archived" / "apps"
    archive.mkdir(parents=True, exist_ok=True)
    target = archive / f"{app}-{time.strftime('%Y%m%d-%H%M%S')}"
    if target.exists():  # removed twice within a second
        target = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=archive))
        target.rmdir()
    folder.rename(target)
    bench.remove_available_app(app)
    return target


# \Z, not $: "$" also matches before a trailing "\n", which would let "s2\n" through.
DB_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}\Z")
APP_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")  # an importable top-level package


def check_app_name(app: str) -> None:
    """An app is a package name: apps.txt holds one a line, so nothing else may get in."""
    if not APP_NAME_RE.fullmatch(app):
        raise AppError(
            f"invalid app name {app!r}: an app is a Python package name "
            "(letters, digits and _, not starting with a digit)"
        )


def _server_engine(db_url: str) -> tuple[sa.Engine, str, str]:
    """An AUTOCOMMIT engine on the server's maintenance database, plus the target name."""
    url = normalize_url(db_url)
    name = url.database or ""
    if not DB_NAME_RE.fullmatch(name):
        raise SiteError(f"database name {name!r} in db_url: use letters, digits, _ and -")
    backend = url.get_backend_name()
    # URL.set() ignores None, so replace the field directly to connect without a database.
    admin = url._replace(database="postgres" if backend == "postgresql" else None)
    try:
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    except (NoSuchModuleError, ImportError) as exc:  # the driver is not installed
        extra = "postgres" if backend == "postgresql" else "mysql"
        raise DatabaseError(
            f"no driver for {display_url(url)}; install it with pip install 'jobbench[{extra}]'"
        ) from exc
    return engine, name, backend


def ensure_database(db_url: str) -> bool:
    """Create the database a server URL names if it is missing; True when we created it."""
    url = normalize_url(db_url)
    if url.get_backend_name() == "sqlite":
        return False
    if not url.database:
        raise SiteError(f"db_url {display_url(url)} names no database; add /DBNAME to it")
    if url.get_backend_name() not in ("postgresql", "mysql", "mariadb"):
        raise SiteError(f"db_url {display_url(url)}: use sqlite, postgresql or mysql/mariadb")
    engine, name, backend = _server_engine(db_url)
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                found = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).first()
                if found:
                    return False
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                return True
            found = conn.execute(sa.text("SHOW DATABASES LIKE :n"), {"n": name}).first()
            if found:
                return False
            conn.execute(
                sa.text(
                    f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            )
            return True
    except DBAPIError as exc:
        raise DatabaseUnavailableError(
            f"cannot create database on {display_url(make_url(db_url))}: "
            f"{str(exc.orig).strip().splitlines()[0]}"
        ) from exc
    finally:
        engine.dispose()


def drop_database(db_url: str) -> None:
    """Drop the database a server URL names (used to undo a failed new-site, and by tests)."""
    from jobbench.model.database import dispose_engines

    dispose_engines()  # our pooled connections would block DROP DATABASE
    engine, name, backend = _server_engine(db_url)
    quote = '"' if backend == "postgresql" else "`"
    extra = " WITH (FORCE)" if backend == "postgresql" else ""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{extra}"))
    finally:
        engine.dispose()
