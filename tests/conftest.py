"""Shared fixtures: temporary benches and sites, and real database servers.

Tests that need a server use the ``db_url`` fixture (parametrised over SQLite, PostgreSQL and
MariaDB) or ``server_db_url``. Each test gets a fresh database that is dropped afterwards. When a
server does not answer, the test is skipped with the reason, except under CI=true, where it
fails: CI must never pass by skipping the real thing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobbench.bench import Bench, init_bench

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_SERVER = os.environ.get("JOBBENCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
MARIADB_SERVER = os.environ.get("JOBBENCH_TEST_MARIADB", "mysql://root@127.0.0.1:3306")
REDIS_SERVER = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379")


# Timing-sensitive tests (real deadlines, kills, scheduler ticks, the global SCRIPT FLUSH):
# marked ``serial``. The README's test command runs everything else on two processes
# (pytest-xdist, ``-m "not serial"``), then these alone (``-m serial``), so no test whose
# assertion is about time shares the machine's two cores with another test.
SERIAL = (
    "tests/chaos/",
    "tests/acceptance/test_liveness.py",
    "tests/acceptance/test_start.py",
    "tests/integration/test_worker_robustness.py",
    "tests/integration/test_concurrency.py",
    "tests/integration/test_async_jobs.py",
    "tests/integration/test_liveness.py",
    "tests/integration/test_scheduler_",
    "tests/integration/test_redis_scripts_lost.py",
    "tests/integration/test_jobs_wait.py",
    "tests/integration/test_jobs_delayed.py",
)
_ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.fspath)).resolve().relative_to(_ROOT).as_posix()
        if where.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)


# pytest-xdist's second process (gw1) uses other Redis databases for the tests that flush
# theirs, so two tests never flush each other's keys.
_GW1_DBS = {7: 0, 8: 1, 9: 2, 11: 3, 13: 4, 15: 5}


def redis_db(db: int) -> int:
    """The Redis database number this test process uses for ``db``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if worker == "gw0":
        return db
    if worker == "gw1":
        return _GW1_DBS[db]
    raise RuntimeError(f"tests run on at most 2 xdist processes (-n 2), not {worker}")


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here (an initial conftest) so `pytest --chaos-long` works from the repository root too.
    parser.addoption(
        "--chaos-long",
        action="store_true",
        default=False,
        help="run the chaos suite's long form (10,000 jobs, more slots and examples)",
    )
    parser.addoption(
        "--scheduler-long",
        action="store_true",
        default=False,
        help="run the DST scheduler tests' long form (two full years of ticks in every zone)",
    )


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (CI=true) when a server is not listening."""
    if _answers(host, port):
        return
    reason = f"{name} is not answering on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{reason}; CI must test against it (.ci/run starts it)")
    pytest.skip(reason)


def drop_bench_keys(url: str, bench_id: str) -> int:
    """Delete one bench's keys (``jb:{<bench_id>}:*``) from the Redis database at ``url``; how
    many. Never FLUSHDB: test runs side by side share the database, each under its own id."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"jb:{{{bench_id}}}:*", count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


@contextlib.contextmanager
def redis_test_broker(url: str) -> Iterator[Any]:
    """A RedisBroker at ``url`` under a fresh bench id, its keys deleted afterwards (skips, or
    fails under CI, when the test Redis does not answer)."""
    from urllib.parse import urlsplit

    parts = urlsplit(REDIS_SERVER)
    require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    from jobbench.brokers.redis import RedisBroker

    bench_id = uuid.uuid4().hex[:8]
    broker = RedisBroker(url, bench_id)
    try:
        yield broker
    finally:
        drop_bench_keys(url, bench_id)
        broker.close()


def _server_url(kind: str) -> str:
    if kind == "postgres":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        return PG_SERVER
    require_service("MariaDB", "127.0.0.1", 3306)
    return MARIADB_SERVER


@pytest.fixture
def fresh_server_db(request: pytest.FixtureRequest) -> Iterator[object]:
    """A factory: ``fresh_server_db("postgres"|"mariadb")`` -> URL of a new, empty database."""
    from jobbench.sites import drop_database, ensure_database

    made: list[str] = []

    def make(kind: str) -> str:
        url = f"{_server_url(kind)}/jb_test_{uuid.uuid4().hex[:12]}"
        ensure_database(url)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def db_url(request: pytest.FixtureRequest, fresh_server_db: object, tmp_path: Path) -> str:
    """A database URL for a new site: SQLite in tmp_path, or a fresh server database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'site.sqlite3'}"
    return fresh_server_db(request.param)  # type: ignore[operator]


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    """A new bench in a temp folder with a tiny app ``tapp`` in its apps/ folder."""
    bench = init_bench(tmp_path / "bench")
    write_app(bench.path / "apps", "tapp")
    return bench


TASK_MODULE = """
from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from jobbench.model import Document, Field

CALLS: list[str] = []


class Task(Document):
    doctype = "Task"
    naming = "TASK-.####"

    subject: str
    status: str = Field("Open", options=["Open", "Working", "Closed"], index=True)
    priority: int = 0
    score: float | None = None
    done: bool = False
    amount: Decimal | None = None
    due: datetime.date | None = None
    starts: datetime.datetime | None = None
    data: dict[str, Any] | None = None
    parent_task: str | None = Field(None, link="Task")

    def before_insert(self) -> None:
        CALLS.append("before_insert")

    def validate(self) -> None:
        CALLS.append("validate")

    def after_insert(self) -> None:
        CALLS.append("after_insert")

    def on_update(self) -> None:
        CALLS.append("on_update")

    def on_trash(self) -> None:
        CALLS.append("on_trash")

    def do_something(self, param: str | None = None) -> str | None:
        return param


class Note(Document):
    doctype = "Note"
    naming = "field:title"

    title: str
    body: str | None = None


class Tag(Document):
    doctype = "Tag"
    naming = "hash"

    label: str = Field(max_length=20, unique=True)
"""


def write_app(apps_dir: Path, name: str, hooks: str | None = None, with_hooks: bool = True) -> Path:
    """Write an app package ``name`` with doctypes Task, Note and Tag."""
    pkg = apps_dir / name
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "doctypes.py").write_text(textwrap.dedent(TASK_MODULE))
    if with_hooks:
        default = (
            f'doctypes = ["{name}.doctypes.Task", "{name}.doctypes.Note", "{name}.doctypes.Tag"]\n'
        )
        (pkg / "hooks.py").write_text(hooks if hooks is not None else default)
    return pkg


@pytest.fixture
def site(bench: Bench, db_url: str) -> Iterator[str]:
    """A site on ``db_url`` with ``tapp`` installed; yields its name, the bench is ``bench``."""
    import sys

    from jobbench.sites import install_app, new_site

    new_site(bench, "site1", db_url=None if db_url.startswith("sqlite") else db_url)
    install_app(bench, "site1", "tapp")
    yield "site1"
    for mod in [m for m in sys.modules if m == "tapp" or m.startswith("tapp.")]:
        del sys.modules[mod]


def release_bench(bench: Bench) -> None:
    """Drop what this process keeps open for ``bench``: its broker and its sites' engines."""
    from jobbench.brokers.factory import forget_broker
    from jobbench.model.database import dispose_engine

    forget_broker(bench)
    for site in bench.list_sites():
        dispose_engine(bench.merged_config(site).db_url)
