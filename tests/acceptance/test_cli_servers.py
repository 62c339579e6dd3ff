"""``new-site --db-url`` on real PostgreSQL and MariaDB servers: the CLI creates the database.

Skipped with the reason when a server is not answering, except under CI=true (then failed).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import MARIADB_SERVER, PG_SERVER, require_service  # tests/conftest.py
from jobbench.model.database import normalize_url
from jobbench.sites import drop_database

from .helpers import ok, run_cli

SERVERS = {
    "postgres": ("PostgreSQL", 5432, PG_SERVER),
    "mariadb": ("MariaDB", 3306, MARIADB_SERVER),
}


def _database_names(server: str) -> set[str]:
    url = normalize_url(server + "/postgres" if server.startswith("postgres") else server)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if url.get_backend_name() == "postgresql":
                rows = conn.execute(sa.text("SELECT datname FROM pg_database"))
            else:
                rows = conn.execute(sa.text("SHOW DATABASES"))
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def _tables(db_url: str) -> set[str]:
    engine = sa.create_engine(normalize_url(db_url))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=sorted(SERVERS))
def server_db(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(server URL, URL of a database that does not exist yet); dropped afterwards."""
    label, port, server = SERVERS[request.param]
    require_service(label, "127.0.0.1", port)
    name = f"jb_acc_{uuid.uuid4().hex[:12]}"
    url = f"{server}/{name}"
    yield server, url
    drop_database(url)
    assert name not in _database_names(server)


def test_new_site_on_a_server_creates_the_database(
    bench_dir: Path, server_db: tuple[str, str]
) -> None:
    server, url = server_db
    name = url.rsplit("/", 1)[1]
    assert name not in _database_names(server)

    out = ok(run_cli("new-site", "srv", "--db-url", url, cwd=bench_dir))

    assert "Created site srv" in out
    assert name in _database_names(server)
    site = bench_dir / "sites" / "srv"
    conf = json.loads((site / "site_config.json").read_text())
    assert conf == {"db_url": url, "installed_apps": []}
    assert not (site / "site.sqlite3").exists()
    assert {"tabError Log", "tabBackground Task", "tabSingles"} <= _tables(url)

    ok(run_cli("--site", "srv", "install-app", "tapp", cwd=bench_dir))
    assert {"tabTask", "tabNote", "tabTag"} <= _tables(url)
    out = ok(run_cli("--site", "all", "migrate", cwd=bench_dir))
    assert "Migrated s1" in out and "Migrated srv" in out


def test_new_site_on_a_server_with_a_failing_app_drops_the_database(
    bench_dir: Path, server_db: tuple[str, str]
) -> None:
    from conftest import write_app

    server, url = server_db
    name = url.rsplit("/", 1)[1]
    write_app(bench_dir / "apps", "baddt", hooks='doctypes = ["baddt.nothere.Thing"]\n')

    result = run_cli("new-site", "srv", "--db-url", url, "--install-app", "baddt", cwd=bench_dir)

    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert not (bench_dir / "sites" / "srv").exists()
    assert name not in _database_names(server)
