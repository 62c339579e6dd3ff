"""Site lifecycle: new-site, install-app, migrate. Each either completes or changes nothing."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError

from jobbench.apps import load_app_hooks
from jobbench.bench import SITE_NAME_RE, Bench
from jobbench.context import SiteLocal, site_context
from jobbench.errors import (
    AppError,
    DatabaseError,
    DatabaseUnavailableError,
    SiteError,
    SiteExistsError,
)
from jobbench.model import query
from jobbench.model.database import display_url, normalize_url
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
        return migrate_current(local)


def migrate_current(local: SiteLocal) -> MigrateReport:
    doctypes = local.doctypes()
    metas = [cls.get_meta() for cls in doctypes.values()]
    changes = sync_tables(local.db, metas)
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
