"""Config files: reading, validation, merging, atomic writes; bench discovery and init."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from jobbench import config
from jobbench.bench import Bench, find_bench, init_bench
from jobbench.errors import BenchNotFoundError, ConfigError, JobbenchError, SiteNotFoundError
from jobbench.utils import _dict

# --- merge -----------------------------------------------------------------------------------


def test_merge_site_key_overrides_common_key() -> None:
    common = {"background_workers": 2, "time_zone": "UTC", "only_common": 1}
    site = {"time_zone": "Europe/Berlin", "only_site": "x"}

    merged = config.merge(common, site)

    assert merged == {
        "background_workers": 2,
        "time_zone": "Europe/Berlin",
        "only_common": 1,
        "only_site": "x",
    }


def test_merge_is_shallow_and_leaves_inputs_untouched() -> None:
    common = {"workers": {"a": {"timeout": 10}, "b": {"timeout": 20}}}
    site = {"workers": {"c": {"timeout": 30}}}

    merged = config.merge(common, site)

    # A dict value in the site file replaces the common one whole, as in Frappe.
    assert merged["workers"] == {"c": {"timeout": 30}}
    assert common == {"workers": {"a": {"timeout": 10}, "b": {"timeout": 20}}}
    assert site == {"workers": {"c": {"timeout": 30}}}


def test_merge_returns_attribute_dict_where_missing_keys_read_as_none() -> None:
    merged = config.merge({"redis_queue": "redis://h:6379"}, {})

    assert isinstance(merged, _dict)
    assert merged.redis_queue == "redis://h:6379"
    assert merged.not_a_key is None


# --- validation of known keys ------------------------------------------------------------------

VALID_VALUES: list[tuple[str, Any]] = [
    ("redis_queue", "redis://127.0.0.1:6379"),
    ("redis_queue", None),
    ("use_rq_auth", 1),
    ("rq_username", "jb"),
    ("rq_password", "secret"),
    ("redis_queue_sentinel_enabled", True),
    ("redis_queue_sentinels", ["10.0.0.1:26379", "[::1]:26379"]),
    ("redis_queue_master_service", "mymaster"),
    ("redis_queue_sentinel_username", "s"),
    ("redis_queue_sentinel_password", "sp"),
    ("redis_queue_master_username", "m"),
    ("redis_queue_master_password", "mp"),
    ("redis_queue_cluster", 0),
    ("redis_queue_ssl_ca_certs", "/etc/ssl/ca.crt"),
    ("redis_queue_ssl_certfile", "/etc/ssl/client.crt"),
    ("redis_queue_ssl_keyfile", "/etc/ssl/client.key"),
    ("redis_queue_ssl_cert_reqs", "required"),
    ("redis_queue_socket_timeout", 2.5),
    ("redis_queue_socket_keepalive", 1),
    ("redis_queue_wait_replicas", 1),
    ("redis_queue_wait_timeout", 0.5),
    ("db_url", "sqlite:///x.sqlite3"),
    ("installed_apps", ["a", "b"]),
    ("installed_apps", []),
    ("workers", {}),
    ("workers", {"myqueue": {"timeout": 5000, "background_workers": 4}}),
    ("workers", {"q.1-x": {"timeout": -1}}),
    ("background_workers", 1),
    ("scheduler_tick_interval", 0.5),
    ("scheduler_tick_interval", 60),
    ("scheduler_interval", 1),
    ("pause_scheduler", 0),
    ("pause_scheduler", 1),
    ("pause_scheduler", True),
    ("disable_scheduler", False),
    ("maintenance_mode", 1),
    ("time_zone", "Europe/Berlin"),
    ("time_zone", "UTC"),
    ("rq_results_ttl", 0),
    ("rq_job_failure_ttl", 604800),
    ("rq_failed_jobs_limit", 1000),
    ("max_queued_jobs", None),
    ("max_queued_jobs", 1),
    ("job_concurrency_limits", {"myapp.tasks.sync": 1}),
    ("allowed_job_modules", ["myproject.tasks"]),
    ("allowed_job_modules", []),
    ("max_payload_bytes", 1024),
    ("async_concurrency", 50),
    ("async_mode", "loop"),
    ("worker_heartbeat_interval", 1.5),
    ("worker_heartbeat_ttl", 6),
    ("workers", {"io": {"concurrency": 8}}),
    ("dashboard_allowed_hosts", ["jobs.example.com"]),
    ("dashboard_require_auth", True),
    ("dashboard_require_auth", 0),
    ("job_serializer", "json"),
    ("job_serializer", "pickle"),
    ("log_format", "text"),
    ("log_format", "json"),
    ("durable_enqueue", True),
    ("durable_enqueue", 0),
    ("secret_key", "abc"),
    ("bench_id", "b1"),
    ("default_site", "site1"),
    ("dashboard_host", "0.0.0.0"),
    ("dashboard_port", 8000),
    ("dashboard_port", 0),
    ("dashboard_token", "s3cret-token"),
    ("dashboard_password_hash", "pbkdf2_sha256$260000$salt$abcd"),
]

INVALID_VALUES: list[tuple[str, Any]] = [
    ("redis_queue", ""),
    ("redis_queue", 6379),
    ("use_rq_auth", "yes"),
    ("rq_username", ""),
    ("rq_password", 1),
    ("redis_queue_sentinel_enabled", 2),
    ("redis_queue_sentinels", ["10.0.0.1"]),
    ("redis_queue_sentinels", []),
    ("redis_queue_master_service", ""),
    ("redis_queue_sentinel_username", 0),
    ("redis_queue_sentinel_password", None),
    ("redis_queue_master_username", ""),
    ("redis_queue_master_password", []),
    ("redis_queue_cluster", "on"),
    ("redis_queue_ssl_ca_certs", ""),
    ("redis_queue_ssl_certfile", 1),
    ("redis_queue_ssl_keyfile", None),
    ("redis_queue_ssl_cert_reqs", "always"),
    ("redis_queue_socket_timeout", 0),
    ("redis_queue_socket_keepalive", "yes"),
    ("redis_queue_wait_replicas", -1),
    ("redis_queue_wait_timeout", 0),
    ("db_url", ""),
    ("db_url", None),
    ("installed_apps", "tapp"),
    ("installed_apps", ["tapp", ""]),
    ("installed_apps", ["tapp", 3]),
    ("workers", []),
    ("workers", {"bad name": {}}),
    ("workers", {"q": 5}),
    ("workers", {"q": {"timeout": "5000"}}),
    ("workers", {"q": {"timeout": -2}}),
    ("workers", {"q": {"background_workers": 0}}),
    ("background_workers", 0),
    ("background_workers", "2"),
    ("background_workers", True),
    ("background_workers", 1.5),
    ("scheduler_tick_interval", 0),
    ("scheduler_tick_interval", "60"),
    ("scheduler_tick_interval", False),
    ("scheduler_interval", 0),
    ("scheduler_interval", 2.5),
    ("pause_scheduler", 2),
    ("pause_scheduler", "1"),
    ("disable_scheduler", "yes"),
    ("maintenance_mode", -1),
    ("time_zone", "Mars/Olympus_Mons"),
    ("time_zone", ""),
    ("time_zone", 1),
    ("rq_results_ttl", -1),
    ("rq_job_failure_ttl", "7d"),
    ("rq_failed_jobs_limit", None),
    ("max_queued_jobs", 0),
    ("max_queued_jobs", "10"),
    ("job_concurrency_limits", {"myapp.tasks.sync": 0}),
    ("job_concurrency_limits", ["myapp.tasks.sync"]),
    ("allowed_job_modules", "myproject"),
    ("allowed_job_modules", [""]),
    ("max_payload_bytes", 0),
    ("max_payload_bytes", "4MB"),
    ("async_concurrency", 0),
    ("async_mode", "threads"),
    ("worker_heartbeat_interval", 0),
    ("worker_heartbeat_ttl", "10s"),
    ("workers", {"io": {"concurrency": 0}}),
    ("dashboard_allowed_hosts", "localhost"),
    ("dashboard_allowed_hosts", [""]),
    ("dashboard_require_auth", "yes"),
    ("job_serializer", "yaml"),
    ("job_serializer", None),
    ("log_format", "xml"),
    ("log_format", 1),
    ("durable_enqueue", "yes"),
    ("secret_key", ""),
    ("secret_key", 123),
    ("bench_id", ""),
    ("default_site", ["site1"]),
    ("dashboard_host", ""),
    ("dashboard_port", -1),
    ("dashboard_port", "8000"),
    ("dashboard_token", 123),
    ("dashboard_password_hash", None),
]


@pytest.mark.parametrize(("key", "value"), VALID_VALUES)
def test_validate_accepts_valid_value(key: str, value: Any) -> None:
    config.validate({key: value}, "some/file.json")  # must not raise


@pytest.mark.parametrize(("key", "value"), INVALID_VALUES)
def test_validate_rejects_wrong_value_naming_source_and_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        config.validate({key: value}, "some/file.json")

    message = str(info.value)
    assert "some/file.json" in message
    assert f"'{key}'" in message
    assert "must be" in message  # says what was expected


def test_every_known_key_has_valid_and_invalid_cases() -> None:
    # Keeps the two tables above honest when a key is added to KNOWN_KEYS.
    assert {k for k, _ in VALID_VALUES} == set(config.KNOWN_KEYS)
    assert {k for k, _ in INVALID_VALUES} == set(config.KNOWN_KEYS)


def test_validate_lets_unknown_keys_pass_through() -> None:
    config.validate({"my_app_setting": object(), "another": [1, "x"]}, "f.json")


def test_validate_rejects_non_finite_tick_interval() -> None:
    # Python's json module reads the non-standard literal Infinity; it is no valid interval.
    with pytest.raises(ConfigError, match="scheduler_tick_interval"):
        config.validate({"scheduler_tick_interval": float("inf")}, "f.json")
    with pytest.raises(ConfigError, match="scheduler_tick_interval"):
        config.validate({"scheduler_tick_interval": float("nan")}, "f.json")


def test_workers_error_names_the_bad_sub_key() -> None:
    with pytest.raises(ConfigError, match=r"'long\.background_workers' must be an integer >= 1"):
        config.validate({"workers": {"long": {"background_workers": 0}}}, "f.json")


def test_config_error_is_a_jobbench_error() -> None:
    assert issubclass(ConfigError, JobbenchError)
    assert issubclass(BenchNotFoundError, ConfigError)


# --- read_json -------------------------------------------------------------------------------


def test_read_json_missing_file_is_empty_config(tmp_path: Path) -> None:
    assert config.read_json(tmp_path / "nope.json") == {}


def test_read_json_empty_file_is_empty_config(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("  \n")
    assert config.read_json(path) == {}


def test_read_json_returns_object_with_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"background_workers": 3, "app_key": {"x": 1}}))

    assert config.read_json(path) == {"background_workers": 3, "app_key": {"x": 1}}


def test_read_json_malformed_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "common_site_config.json"
    path.write_text('{\n "background_workers": 2,\n "time_zone": "UTC"\n "oops": 1\n}\n')

    with pytest.raises(ConfigError) as info:
        config.read_json(path)

    message = str(info.value)
    assert str(path) in message
    assert re.search(r"\bline 4\b", message), message
    assert "malformed JSON" in message


def test_read_json_trailing_comma_reports_its_line(tmp_path: Path) -> None:
    path = tmp_path / "site_config.json"
    path.write_text('{\n "a": 1,\n "b": 2,\n}\n')

    with pytest.raises(ConfigError, match=r"line 4\b") as info:
        config.read_json(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("text", "kind"), [("[1, 2]", "list"), ('"x"', "str"), ("3", "int")])
def test_read_json_non_object_is_rejected(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)

    with pytest.raises(ConfigError) as info:
        config.read_json(path)
    assert str(path) in str(info.value)
    assert kind in str(info.value)


def test_read_json_validates_known_keys_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"background_workers": "four"}))

    with pytest.raises(ConfigError) as info:
        config.read_json(path)
    assert str(path) in str(info.value)
    assert "'background_workers'" in str(info.value)


def test_read_json_unreadable_path_is_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "c.json"
    folder.mkdir()  # a directory where a file is expected

    with pytest.raises(ConfigError, match="cannot read"):
        config.read_json(folder)


# --- write_json ------------------------------------------------------------------------------


def test_write_json_round_trips_and_creates_parent(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "c.json"
    data = {"background_workers": 2, "nested": {"a": [1, 2]}, "text": "é"}

    config.write_json(path, data)

    assert config.read_json(path) == data
    assert path.read_text(encoding="utf-8").endswith("\n")


def test_write_json_replaces_whole_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    config.write_json(path, {"a": 1, "long": "x" * 1000})

    config.write_json(path, {"b": 2})

    assert json.loads(path.read_text()) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_write_json_failure_keeps_old_file_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    config.write_json(path, {"a": 1})
    before = path.read_text()

    with pytest.raises(TypeError):
        config.write_json(path, {"a": object()})  # not JSON-serialisable, fails mid-write

    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


# --- bench discovery -------------------------------------------------------------------------


def test_find_bench_explicit_path(tmp_path: Path) -> None:
    made = init_bench(tmp_path / "b")

    assert find_bench(tmp_path / "b") == made
    assert find_bench(str(tmp_path / "b")).path == made.path


def test_find_bench_explicit_path_wins_over_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = init_bench(tmp_path / "one")
    two = init_bench(tmp_path / "two")
    monkeypatch.setenv("JOBBENCH_BENCH", str(two.path))

    assert find_bench(one.path) == one


def test_find_bench_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = init_bench(tmp_path / "b")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("JOBBENCH_BENCH", str(made.path))

    assert find_bench() == made


def test_find_bench_env_pointing_at_non_bench_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBBENCH_BENCH", str(tmp_path))

    with pytest.raises(BenchNotFoundError, match="is not a bench"):
        find_bench()


def test_find_bench_walks_up_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = init_bench(tmp_path / "b")
    deep = made.path / "sites" / "x" / "y"
    deep.mkdir(parents=True)
    monkeypatch.delenv("JOBBENCH_BENCH", raising=False)
    monkeypatch.chdir(deep)

    assert find_bench() == made


def test_find_bench_nowhere_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBBENCH_BENCH", raising=False)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(BenchNotFoundError) as info:
        find_bench()
    assert "--bench" in str(info.value)
    assert "JOBBENCH_BENCH" in str(info.value)


def test_find_bench_explicit_non_bench_raises(tmp_path: Path) -> None:
    with pytest.raises(BenchNotFoundError) as info:
        find_bench(tmp_path)
    assert str(tmp_path.resolve()) in str(info.value)


# --- init_bench ------------------------------------------------------------------------------


def test_init_bench_creates_layout_and_keys(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")

    for sub in ("sites", "logs", "apps"):
        assert (bench.path / sub).is_dir()
    assert bench.apps_txt.read_text() == ""
    common = bench.common_config()
    assert re.fullmatch(r"[0-9a-f]{64}", common.secret_key)
    assert re.fullmatch(r"[0-9a-f]{8}", common.bench_id)
    assert bench.list_sites() == []


def test_init_bench_keys_differ_between_benches(tmp_path: Path) -> None:
    one = init_bench(tmp_path / "one").common_config()
    two = init_bench(tmp_path / "two").common_config()

    assert one.secret_key != two.secret_key
    assert one.bench_id != two.bench_id


def test_init_bench_accepts_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    bench = init_bench(tmp_path / "empty")

    assert bench.common_config_path.is_file()


def test_init_bench_refuses_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")

    with pytest.raises(ConfigError, match="not empty"):
        init_bench(tmp_path / "full")
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["keep.txt"]


def test_init_bench_refuses_existing_bench_and_keeps_its_keys(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")
    before = bench.common_config_path.read_text()

    with pytest.raises(ConfigError, match="already a bench"):
        init_bench(tmp_path / "b")
    assert bench.common_config_path.read_text() == before


def test_init_bench_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")

    with pytest.raises(ConfigError, match="not a folder"):
        init_bench(tmp_path / "f")


# --- Bench config access ---------------------------------------------------------------------


def _make_site(bench: Bench, site: str, conf: dict[str, Any]) -> None:
    config.write_json(bench.site_config_path(site), conf)


def test_merged_config_overrides_and_defaults(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")
    bench.update_common_config({"time_zone": "UTC", "background_workers": 3})
    _make_site(bench, "s1", {"time_zone": "Asia/Tokyo"})

    conf = bench.merged_config("s1")

    assert conf.time_zone == "Asia/Tokyo"
    assert conf.background_workers == 3
    assert conf.installed_apps == []
    assert conf.db_url == f"sqlite:///{bench.path / 'sites' / 's1' / 'site.sqlite3'}"


def test_merged_config_keeps_explicit_db_url(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")
    _make_site(bench, "s1", {"db_url": "postgresql://u@h/db"})

    assert bench.merged_config("s1").db_url == "postgresql://u@h/db"


def test_merged_config_bad_site_value_names_site_file(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")
    _make_site(bench, "s1", {"pause_scheduler": "yes"})

    with pytest.raises(ConfigError) as info:
        bench.merged_config("s1")
    assert str(bench.site_config_path("s1")) in str(info.value)
    assert "'pause_scheduler'" in str(info.value)


def test_merged_config_malformed_common_names_common_file(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")
    _make_site(bench, "s1", {})
    bench.common_config_path.write_text('{"a": 1,,}')

    with pytest.raises(ConfigError) as info:
        bench.merged_config("s1")
    assert str(bench.common_config_path) in str(info.value)
    assert "line 1" in str(info.value)


def test_unknown_site_raises_site_not_found(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")
    _make_site(bench, "s1", {})

    with pytest.raises(SiteNotFoundError, match="'s2'.*sites: s1"):
        bench.merged_config("s2")


@pytest.mark.parametrize("name", ["..", "../b", "a/b", "", ".hidden", "-x"])
def test_site_exists_rejects_unsafe_names(tmp_path: Path, name: str) -> None:
    bench = init_bench(tmp_path / "b")
    # A config file does exist where the odd name points; the name alone must be refused.
    target = bench.site_config_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("{}")

    assert bench.site_exists(name) is False
    assert name not in bench.list_sites()


def test_update_site_config_validates_before_writing(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")
    _make_site(bench, "s1", {"time_zone": "UTC", "app_key": 1})
    before = bench.site_config_path("s1").read_text()

    with pytest.raises(ConfigError, match="'max_queued_jobs'"):
        bench.update_site_config("s1", {"max_queued_jobs": 0})
    assert bench.site_config_path("s1").read_text() == before

    bench.update_site_config("s1", {"max_queued_jobs": 5})
    assert bench.site_config("s1") == {"time_zone": "UTC", "app_key": 1, "max_queued_jobs": 5}


def test_update_common_config_validates_before_writing(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")
    before = bench.common_config_path.read_text()

    with pytest.raises(ConfigError, match="'job_serializer'"):
        bench.update_common_config({"job_serializer": "marshal"})
    assert bench.common_config_path.read_text() == before

    bench.update_common_config({"job_serializer": "pickle"})
    common = bench.common_config()
    assert common.job_serializer == "pickle"
    assert common.secret_key  # existing keys kept


def test_available_apps_added_once_in_order(tmp_path: Path) -> None:
    bench = init_bench(tmp_path / "b")

    bench.add_available_app("one")
    bench.add_available_app("two")
    bench.add_available_app("one")

    assert bench.available_apps() == ["one", "two"]
    os.remove(bench.apps_txt)
    assert bench.available_apps() == []


def test_read_json_with_infinity_literal_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"scheduler_tick_interval": Infinity}')

    with pytest.raises(ConfigError, match="'scheduler_tick_interval'"):
        config.read_json(path)
