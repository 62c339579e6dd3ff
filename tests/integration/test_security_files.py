"""Files jobbench creates that hold job data or secrets are owner-only (0600): the SQLite site
databases and the SQLite broker with their -wal/-shm files, and the config files holding
secret_key. Wider files are tightened when jobbench opens them (if it owns them). A real
worker's log escapes control characters in job ids."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import jobbench
from conftest import release_bench  # tests/conftest.py
from jobbench.bench import Bench, init_bench
from jobbench.brokers.sqlite import SQLiteBroker
from jobbench.jobs.record import JobRecord
from jobbench.model.database import dispose_engines
from jobbench.sites import new_site

from .jobs_helpers import (
    Engine,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def companions(db_file: Path) -> list[Path]:
    return [Path(f"{db_file}{suffix}") for suffix in ("-wal", "-shm")]


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common 022 umask, under which SQLite on its own makes 0644 files."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def fresh_bench(tmp_path: Path) -> Iterator[Bench]:
    bench = init_bench(tmp_path / "bench")
    try:
        yield bench
    finally:
        release_bench(bench)


def _record(job_id: str = "s1::j1") -> JobRecord:
    return JobRecord(id=job_id, site="s1", queue="default", method="m.f", payload=b"{}")


# -- config files -------------------------------------------------------------------------------


def test_bench_config_holding_secret_key_is_owner_only(fresh_bench: Bench) -> None:
    assert "secret_key" in fresh_bench.common_config()
    assert mode(fresh_bench.common_config_path) == 0o600
    fresh_bench.update_common_config({"background_workers": 2})  # a rewrite keeps it
    assert mode(fresh_bench.common_config_path) == 0o600


def test_site_config_is_owner_only(fresh_bench: Bench) -> None:
    new_site(fresh_bench, "s1")
    path = fresh_bench.site_config_path("s1")
    assert mode(path) == 0o600
    fresh_bench.update_site_config("s1", {"maintenance_mode": 0})
    assert mode(path) == 0o600


def test_config_made_wider_by_hand_is_tightened_when_read(fresh_bench: Bench) -> None:
    path = fresh_bench.common_config_path
    path.write_text(path.read_text().replace("{", '{\n "background_workers": 3,', 1))
    path.chmod(0o644)
    assert fresh_bench.common_config().background_workers == 3
    assert mode(path) == 0o600


# -- SQLite site database ---------------------------------------------------------------------


def test_new_sqlite_site_database_and_its_wal_and_shm_are_owner_only(fresh_bench: Bench) -> None:
    new_site(fresh_bench, "s1")
    db_file = fresh_bench.site_path("s1") / "site.sqlite3"
    assert mode(db_file) == 0o600
    with jobbench.site_context("s1", fresh_bench.path) as local:
        local.db.sql("CREATE TABLE probe (x INTEGER)")
        local.db.sql("INSERT INTO probe VALUES (1)")
        local.db.commit()
        # The -wal and -shm files exist while a connection is open; SQLite gives them the
        # main file's mode, so they are 0600 too.
        for path in companions(db_file):
            assert path.exists(), path
            assert mode(path) == 0o600, path


def test_wider_site_database_is_tightened_when_opened(fresh_bench: Bench) -> None:
    new_site(fresh_bench, "s1")
    dispose_engines()  # the next context opens new connections
    db_file = fresh_bench.site_path("s1") / "site.sqlite3"
    db_file.chmod(0o644)
    with jobbench.site_context("s1", fresh_bench.path) as local:
        local.db.sql("SELECT 1")
        assert mode(db_file) == 0o600


# -- SQLite broker ------------------------------------------------------------------------------


def test_sqlite_broker_file_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    queue_file = tmp_path / "sites" / "queue.sqlite3"
    broker = SQLiteBroker(queue_file)
    try:
        assert broker.enqueue(_record())
        assert mode(queue_file) == 0o600
        for path in companions(queue_file):
            assert path.exists(), path
            assert mode(path) == 0o600, path
    finally:
        broker.close()


def test_wider_queue_file_and_companions_are_tightened_when_opened(tmp_path: Path) -> None:
    queue_file = tmp_path / "queue.sqlite3"
    older = sqlite3.connect(queue_file)  # what SQLite makes on its own: 0644 files
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("CREATE TABLE t (x)")
    older.commit()
    try:
        assert [mode(p) for p in (queue_file, *companions(queue_file))] == [0o644] * 3
        broker = SQLiteBroker(queue_file)
        try:
            assert [mode(p) for p in (queue_file, *companions(queue_file))] == [0o600] * 3
        finally:
            broker.close()
    finally:
        older.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_file_owned_by_another_user_is_left_as_it_is(tmp_path: Path) -> None:
    queue_file = tmp_path / "queue.sqlite3"
    sqlite3.connect(queue_file).close()
    os.chown(queue_file, 65534, 65534)  # nobody: that owner chose the mode
    queue_file.chmod(0o644)
    broker = SQLiteBroker(queue_file)
    try:
        assert mode(queue_file) == 0o644
    finally:
        broker.close()


# -- a real worker --------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_starting_worker_creates_an_owner_only_queue_file(engine: Engine) -> None:
    release_bench(engine.bench)
    queue_file = engine.bench.sites_path / "queue.sqlite3"
    for path in (queue_file, *companions(queue_file)):
        path.unlink(missing_ok=True)
    engine.run_worker()
    assert mode(queue_file) == 0o600


def test_worker_log_escapes_control_characters_in_job_ids(engine: Engine) -> None:
    job_id = "evil\n\x1b[31mred\r\x07"
    job = enqueue(engine, jobs_path("add"), job_id=job_id, a=1, b=2)
    done = engine.run_worker()
    assert job.refresh().status == "finished"
    log = done.stdout
    assert "\x1b" not in log and "\r" not in log and "\x07" not in log, repr(log)
    assert "evil\\n\\x1b[31mred\\r\\x07" in log, log
    assert not any(line.startswith("\\x1b[31mred") for line in log.splitlines())
    start, end = [line for line in log.splitlines() if f"{jobs_path('add')} (" in line]
    assert start.endswith("started") and " finished in " in end, log
    if engine.kind == "sqlite":
        site_db = engine.bench.site_path("site1") / "site.sqlite3"
        for path in (engine.bench.sites_path / "queue.sqlite3", site_db):
            assert mode(path) == 0o600, path
