"""Happy paths of the bench commands (SPEC §1, §7), each run as a real ``jobbench`` process."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_app  # tests/conftest.py

from .helpers import add_task_field, ok, run_cli, sqlite_columns, sqlite_tables

SQLITE_MAGIC = b"SQLite format 3\x00"


def _read_json(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_init_creates_the_bench_layout(tmp_path: Path) -> None:
    out = ok(run_cli("init", "b1", cwd=tmp_path))
    bench = tmp_path / "b1"
    assert str(bench) in out
    assert (bench / "sites").is_dir()
    assert (bench / "logs").is_dir()
    assert (bench / "sites" / "apps.txt").is_file()
    assert (bench / "sites" / "apps.txt").read_text().strip() == ""
    conf = _read_json(bench / "sites" / "common_site_config.json")
    for key in ("secret_key", "bench_id"):
        assert isinstance(conf[key], str) and conf[key], key
    assert len(conf["secret_key"]) >= 32  # type: ignore[arg-type]


def test_init_generates_distinct_keys_per_bench(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()  # an existing empty folder is accepted too
    ok(run_cli("init", "empty", cwd=tmp_path))
    ok(run_cli("init", tmp_path / "b2", cwd=tmp_path))
    one = _read_json(tmp_path / "empty" / "sites" / "common_site_config.json")
    two = _read_json(tmp_path / "b2" / "sites" / "common_site_config.json")
    assert one["secret_key"] != two["secret_key"]
    assert one["bench_id"] != two["bench_id"]


def test_new_site_creates_config_and_sqlite_database(tmp_path: Path) -> None:
    bench = tmp_path / "b"
    ok(run_cli("init", bench, cwd=tmp_path))
    out = ok(run_cli("new-site", "s1", cwd=bench))
    assert "Created site s1" in out
    site = bench / "sites" / "s1"
    assert _read_json(site / "site_config.json") == {"installed_apps": []}
    db = site / "site.sqlite3"
    assert db.read_bytes()[:16] == SQLITE_MAGIC
    # Built-in doctypes of SPEC §8 have their tables from the start.
    assert {"tabError Log", "tabBackground Task", "tabSingles"} <= sqlite_tables(db)
    assert ok(run_cli("list-sites", cwd=bench)).splitlines() == ["s1"]


def test_install_app_updates_apps_txt_site_config_and_tables(tmp_path: Path) -> None:
    bench = tmp_path / "b"
    ok(run_cli("init", bench, cwd=tmp_path))
    ok(run_cli("new-site", "s1", cwd=bench))
    write_app(bench / "apps", "tapp")
    db = bench / "sites" / "s1" / "site.sqlite3"
    assert "tabTask" not in sqlite_tables(db)

    out = ok(run_cli("--site", "s1", "install-app", "tapp", cwd=bench))

    assert "Installed app tapp on s1" in out
    assert (bench / "sites" / "apps.txt").read_text().split() == ["tapp"]
    conf = _read_json(bench / "sites" / "s1" / "site_config.json")
    assert conf["installed_apps"] == ["tapp"]
    assert {"tabTask", "tabNote", "tabTag"} <= sqlite_tables(db)
    assert {"name", "subject", "status", "due", "owner", "creation", "modified"} <= (
        sqlite_columns(db, "tabTask")
    )


def test_new_site_with_install_app_option(bench_dir: Path) -> None:
    out = ok(run_cli("new-site", "s2", "--install-app", "tapp", cwd=bench_dir))
    assert "Created site s2" in out and "Installed app tapp on s2" in out
    conf = _read_json(bench_dir / "sites" / "s2" / "site_config.json")
    assert conf["installed_apps"] == ["tapp"]
    assert "tabTask" in sqlite_tables(bench_dir / "sites" / "s2" / "site.sqlite3")
    assert (bench_dir / "sites" / "apps.txt").read_text().split() == ["tapp"]


def test_migrate_adds_a_new_field_then_is_idempotent(bench_dir: Path) -> None:
    db = bench_dir / "sites" / "s1" / "site.sqlite3"
    assert "estimate" not in sqlite_columns(db, "tabTask")
    add_task_field(bench_dir / "apps" / "tapp", "estimate: int | None = None")

    out = ok(run_cli("--site", "s1", "migrate", cwd=bench_dir))
    assert "Migrated s1" in out
    assert "estimate" in out
    assert "estimate" in sqlite_columns(db, "tabTask")

    again = ok(run_cli("--site", "s1", "migrate", cwd=bench_dir))
    assert "Migrated s1" in again
    assert "schema already up to date" in again


def test_migrate_site_all_migrates_every_site(bench_dir: Path) -> None:
    ok(run_cli("new-site", "s2", "--install-app", "tapp", cwd=bench_dir))
    add_task_field(bench_dir / "apps" / "tapp", "estimate: int | None = None")

    out = ok(run_cli("--site", "all", "migrate", cwd=bench_dir))

    assert "Migrated s1" in out and "Migrated s2" in out
    for site in ("s1", "s2"):
        db = bench_dir / "sites" / site / "site.sqlite3"
        assert "estimate" in sqlite_columns(db, "tabTask"), site


def test_list_sites_text_and_json(bench_dir: Path) -> None:
    ok(run_cli("new-site", "a0", cwd=bench_dir))
    ok(run_cli("new-site", "s2", cwd=bench_dir))
    assert ok(run_cli("list-sites", cwd=bench_dir)).splitlines() == ["a0", "s1", "s2"]
    data = json.loads(ok(run_cli("list-sites", "--format", "json", cwd=bench_dir)))
    assert data == ["a0", "s1", "s2"]


def test_list_apps_text_and_json(bench_dir: Path) -> None:
    ok(run_cli("new-site", "s2", cwd=bench_dir))
    text = ok(run_cli("list-apps", cwd=bench_dir)).splitlines()
    assert text == ["s1: jobbench, tapp", "s2: jobbench"]
    data = json.loads(ok(run_cli("list-apps", "--format", "json", cwd=bench_dir)))
    assert data == {"s1": ["jobbench", "tapp"], "s2": ["jobbench"]}
    one = json.loads(ok(run_cli("--site", "s2", "list-apps", "--format", "json", cwd=bench_dir)))
    assert one == {"s2": ["jobbench"]}


# --- finding the bench: --bench, then $JOBBENCH_BENCH, then walking up from the cwd ---------


def _other_bench(tmp_path: Path) -> Path:
    """A second bench whose only site is ``other``."""
    other = tmp_path / "other"
    ok(run_cli("init", other, cwd=tmp_path))
    ok(run_cli("new-site", "other", cwd=other))
    return other


def test_bench_found_by_walking_up_from_a_subfolder(bench_dir: Path) -> None:
    for sub in (bench_dir, bench_dir / "sites" / "s1", bench_dir / "apps" / "tapp"):
        assert ok(run_cli("list-sites", cwd=sub)).splitlines() == ["s1"], sub


def test_bench_option_wins_over_env_and_cwd(bench_dir: Path, tmp_path: Path) -> None:
    other = _other_bench(tmp_path)
    env = {"JOBBENCH_BENCH": str(other)}
    out = ok(run_cli("--bench", bench_dir, "list-sites", cwd=other, env=env))
    assert out.splitlines() == ["s1"]


def test_env_bench_wins_over_cwd(bench_dir: Path, tmp_path: Path, outside: Path) -> None:
    other = _other_bench(tmp_path)
    env = {"JOBBENCH_BENCH": str(bench_dir)}
    assert ok(run_cli("list-sites", cwd=other, env=env)).splitlines() == ["s1"]
    assert ok(run_cli("list-sites", cwd=outside, env=env)).splitlines() == ["s1"]


def test_bench_option_drives_site_commands_from_outside(bench_dir: Path, outside: Path) -> None:
    ok(run_cli("--bench", bench_dir, "new-site", "s2", cwd=outside))
    ok(run_cli("--bench", bench_dir, "--site", "s2", "install-app", "tapp", cwd=outside))
    assert list(outside.iterdir()) == []
    conf = _read_json(bench_dir / "sites" / "s2" / "site_config.json")
    assert conf["installed_apps"] == ["tapp"]
    assert "tabTask" in sqlite_tables(bench_dir / "sites" / "s2" / "site.sqlite3")


def test_site_from_env_and_default_site(bench_dir: Path) -> None:
    ok(run_cli("new-site", "s2", cwd=bench_dir))
    out = ok(run_cli("migrate", cwd=bench_dir, env={"JOBBENCH_SITE": "s2"}))
    assert out.splitlines()[0].startswith("Migrated s2")
    common = bench_dir / "sites" / "common_site_config.json"
    conf = _read_json(common)
    conf["default_site"] = "s2"
    common.write_text(json.dumps(conf))
    out = ok(run_cli("migrate", cwd=bench_dir))
    assert out.splitlines()[0].startswith("Migrated s2")
    assert "Migrated s1" not in out
