"""Bad inputs (SPEC §1, §7, §10): non-zero exit, one ``Error:`` line, nothing changed on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_app  # tests/conftest.py

from .helpers import (
    assert_error,
    assert_unchanged,
    assert_usage_error,
    ok,
    run_cli,
    snapshot,
)

# Commands that read the bench-wide config; each must refuse a broken one.
COMMON_READERS = [
    pytest.param(["--site", "s1", "migrate"], id="migrate"),
    pytest.param(["--site", "all", "migrate"], id="migrate-all"),
    pytest.param(["new-site", "s2"], id="new-site"),
    pytest.param(["--site", "s1", "install-app", "tapp2"], id="install-app"),
    pytest.param(["list-apps"], id="list-apps"),
]

# Commands that read s1's site_config.json.
SITE_READERS = [
    pytest.param(["--site", "s1", "migrate"], id="migrate"),
    pytest.param(["--site", "all", "migrate"], id="migrate-all"),
    pytest.param(["--site", "s1", "install-app", "tapp2"], id="install-app"),
    pytest.param(["list-apps"], id="list-apps"),
]


def _common(bench: Path) -> Path:
    return bench / "sites" / "common_site_config.json"


def _site_conf(bench: Path) -> Path:
    return bench / "sites" / "s1" / "site_config.json"


def _fails_cleanly(bench: Path, args: list[str], *needles: str, cwd: Path | None = None) -> str:
    before = snapshot(bench)
    line = assert_error(run_cli(*args, cwd=cwd or bench), *needles)
    assert_unchanged(before, bench)
    return line


# --- configuration files -------------------------------------------------------------------


@pytest.mark.parametrize("args", COMMON_READERS)
def test_malformed_common_config_names_file_and_line(bench_dir: Path, args: list[str]) -> None:
    write_app(bench_dir / "apps", "tapp2")
    conf = json.loads(_common(bench_dir).read_text())
    # Line 3 holds the mistake (a trailing comma before the closing brace is on line 4).
    _common(bench_dir).write_text(
        f'{{\n "bench_id": "{conf["bench_id"]}",\n "secret_key": "{conf["secret_key"]}",,\n}}\n'
    )
    line = _fails_cleanly(bench_dir, args, str(_common(bench_dir)), "line 3", "JSON")
    assert "tapp2" not in line


@pytest.mark.parametrize("args", COMMON_READERS)
def test_wrong_type_in_common_config_names_file_key_and_expectation(
    bench_dir: Path, args: list[str]
) -> None:
    write_app(bench_dir / "apps", "tapp2")
    conf = json.loads(_common(bench_dir).read_text())
    conf["background_workers"] = "two"
    _common(bench_dir).write_text(json.dumps(conf, indent=1))
    _fails_cleanly(
        bench_dir, args, str(_common(bench_dir)), "background_workers", "integer", "'two'"
    )


@pytest.mark.parametrize("args", SITE_READERS)
def test_malformed_site_config_names_file_and_line(bench_dir: Path, args: list[str]) -> None:
    write_app(bench_dir / "apps", "tapp2")
    _site_conf(bench_dir).write_text('{\n "installed_apps": ["tapp"]\n "x": 1\n}\n')
    _fails_cleanly(bench_dir, args, str(_site_conf(bench_dir)), "line 3", "JSON")


def test_wrong_type_in_site_config_names_key(bench_dir: Path) -> None:
    _site_conf(bench_dir).write_text('{"installed_apps": "tapp"}\n')
    _fails_cleanly(
        bench_dir,
        ["--site", "s1", "migrate"],
        str(_site_conf(bench_dir)),
        "installed_apps",
        "list",
    )


def test_site_config_that_is_not_an_object(bench_dir: Path) -> None:
    _site_conf(bench_dir).write_text("[]\n")
    _fails_cleanly(bench_dir, ["--site", "s1", "migrate"], str(_site_conf(bench_dir)), "object")


# --- sites -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--site", "nope", "migrate"], id="migrate"),
        pytest.param(["--site", "nope", "install-app", "tapp"], id="install-app"),
        pytest.param(["--site", "nope", "list-apps"], id="list-apps"),
    ],
)
def test_unknown_site(bench_dir: Path, args: list[str]) -> None:
    _fails_cleanly(bench_dir, args, "'nope'", "does not exist", "s1")


def test_unknown_site_from_env(bench_dir: Path) -> None:
    before = snapshot(bench_dir)
    result = run_cli("migrate", cwd=bench_dir, env={"JOBBENCH_SITE": "nope"})
    assert_error(result, "'nope'", "does not exist")
    assert_unchanged(before, bench_dir)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["migrate"], id="migrate"),
        pytest.param(["install-app", "tapp"], id="install-app"),
    ],
)
def test_command_needing_a_site_without_site(bench_dir: Path, args: list[str]) -> None:
    _fails_cleanly(bench_dir, args, "no site given", "--site")


def test_one_site_command_with_site_all(bench_dir: Path) -> None:
    ok(run_cli("new-site", "s2", cwd=bench_dir))
    write_app(bench_dir / "apps", "tapp2")
    _fails_cleanly(bench_dir, ["--site", "all", "install-app", "tapp2"], "one site", "--site")


def test_new_site_with_existing_name(bench_dir: Path) -> None:
    _fails_cleanly(bench_dir, ["new-site", "s1"], "'s1'", "already exists")


@pytest.mark.parametrize("name", ["../x", "a b", "-x", ".hidden", "a/b", "x" * 64])
def test_new_site_with_invalid_name(bench_dir: Path, name: str) -> None:
    before_parent = snapshot(bench_dir.parent)
    # "--" so that "-x" reaches new-site as a NAME rather than as an option.
    _fails_cleanly(bench_dir, ["new-site", "--", name], "invalid site name", repr(name))
    assert_unchanged(before_parent, bench_dir.parent)  # "../x" must not escape sites/


@pytest.mark.parametrize(
    "url, shown",
    [
        pytest.param("postgresql://postgres@127.0.0.1:1/x", "127.0.0.1:1", id="postgres"),
        pytest.param("mysql://root@127.0.0.1:1/x", "127.0.0.1:1", id="mysql"),
    ],
)
def test_new_site_with_unreachable_database(bench_dir: Path, url: str, shown: str) -> None:
    _fails_cleanly(bench_dir, ["new-site", "s2", "--db-url", url], shown, "cannot")
    assert not (bench_dir / "sites" / "s2").exists()


@pytest.mark.parametrize(
    "url, needle",
    [
        pytest.param("foo://x/y", "foo://x/y", id="unknown-backend"),
        pytest.param("postgresql://postgres@127.0.0.1:5432", "names no database", id="no-db"),
        pytest.param("not a url", "not a url", id="garbage"),
    ],
)
def test_new_site_with_invalid_db_url(bench_dir: Path, url: str, needle: str) -> None:
    _fails_cleanly(bench_dir, ["new-site", "s2", "--db-url", url], needle)
    assert not (bench_dir / "sites" / "s2").exists()


def test_new_site_with_sqlite_file_in_missing_folder(bench_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no_such_dir' / 'x.sqlite3'}"
    line = _fails_cleanly(bench_dir, ["new-site", "s2", "--db-url", url], url, "folder")
    assert "server" not in line
    assert not (bench_dir / "sites" / "s2").exists()
    assert not (tmp_path / "no_such_dir").exists()


def test_new_site_with_unimportable_app_leaves_no_site(bench_dir: Path) -> None:
    _fails_cleanly(bench_dir, ["new-site", "s2", "--install-app", "nosuchapp"], "'nosuchapp'")
    assert not (bench_dir / "sites" / "s2").exists()


def test_new_site_whose_app_fails_to_migrate_leaves_no_site(bench_dir: Path) -> None:
    write_app(bench_dir / "apps", "baddt", hooks='doctypes = ["baddt.nothere.Thing"]\n')
    _fails_cleanly(bench_dir, ["new-site", "s2", "--install-app", "baddt"], "baddt.nothere")
    assert not (bench_dir / "sites" / "s2").exists()


# --- apps ------------------------------------------------------------------------------------


def test_install_unknown_app(bench_dir: Path) -> None:
    _fails_cleanly(
        bench_dir, ["--site", "s1", "install-app", "nosuchapp"], "'nosuchapp'", "not importable"
    )


def test_install_app_without_hooks(bench_dir: Path) -> None:
    write_app(bench_dir / "apps", "nohooks", with_hooks=False)
    _fails_cleanly(
        bench_dir, ["--site", "s1", "install-app", "nohooks"], "'nohooks'", "no hooks.py"
    )


def test_install_app_whose_hooks_raise(bench_dir: Path) -> None:
    write_app(bench_dir / "apps", "boomapp", hooks='raise RuntimeError("boom in hooks")\n')
    _fails_cleanly(
        bench_dir,
        ["--site", "s1", "install-app", "boomapp"],
        "'boomapp'",
        "hooks.py",
        "RuntimeError",
        "boom in hooks",
    )


def test_install_app_whose_hooks_have_a_syntax_error(bench_dir: Path) -> None:
    write_app(bench_dir / "apps", "synapp", hooks="doctypes = [\n")
    _fails_cleanly(
        bench_dir,
        ["--site", "s1", "install-app", "synapp"],
        "'synapp'",
        "hooks.py",
        "SyntaxError",
        "line 1",
    )


def test_install_app_whose_hooks_import_something_missing(bench_dir: Path) -> None:
    write_app(bench_dir / "apps", "impapp", hooks="import no_such_module_xyz\n")
    _fails_cleanly(
        bench_dir, ["--site", "s1", "install-app", "impapp"], "'impapp'", "no_such_module_xyz"
    )


def test_install_app_whose_doctype_does_not_import_restores_config(bench_dir: Path) -> None:
    write_app(bench_dir / "apps", "baddt", hooks='doctypes = ["baddt.nothere.Thing"]\n')
    _fails_cleanly(bench_dir, ["--site", "s1", "install-app", "baddt"], "baddt.nothere.Thing")


@pytest.mark.parametrize("app", ["tapp", "jobbench"])
def test_install_already_installed_app(bench_dir: Path, app: str) -> None:
    _fails_cleanly(
        bench_dir, ["--site", "s1", "install-app", app], f"'{app}'", "already installed", "'s1'"
    )


# --- init and finding the bench ------------------------------------------------------------


def test_init_into_non_empty_folder(tmp_path: Path) -> None:
    target = tmp_path / "full"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    _fails_cleanly(target, ["init", target], str(target), "not empty", cwd=tmp_path)


def test_init_over_an_existing_bench(bench_dir: Path, tmp_path: Path) -> None:
    _fails_cleanly(bench_dir, ["init", bench_dir], str(bench_dir), "already a bench", cwd=tmp_path)


def test_init_onto_a_file(tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("x\n")
    before = snapshot(tmp_path)
    assert_usage_error(run_cli("init", target, cwd=tmp_path), str(target), "is a file")
    assert_unchanged(before, tmp_path)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["list-sites"], id="list-sites"),
        pytest.param(["new-site", "s1"], id="new-site"),
        pytest.param(["--site", "s1", "migrate"], id="migrate"),
    ],
)
def test_no_bench_found(outside: Path, args: list[str]) -> None:
    _fails_cleanly(outside, args, "no bench found", str(outside), "--bench", cwd=outside)


def test_bench_option_pointing_at_a_non_bench(outside: Path) -> None:
    _fails_cleanly(
        outside, ["--bench", outside, "list-sites"], str(outside), "is not a bench", cwd=outside
    )


def test_env_bench_pointing_at_a_non_bench(outside: Path, bench_dir: Path) -> None:
    # Even from inside a real bench: an explicit $JOBBENCH_BENCH is not silently ignored.
    before = snapshot(outside)
    result = run_cli("list-sites", cwd=bench_dir, env={"JOBBENCH_BENCH": str(outside)})
    assert_error(result, str(outside), "is not a bench")
    assert_unchanged(before, outside)


# --- usage mistakes (click) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        pytest.param(["--site", "s1", "bogus"], "No such command 'bogus'", id="unknown-command"),
        pytest.param(["new-site"], "Missing argument 'NAME'", id="missing-argument"),
        pytest.param(["list-sites", "--format", "xml"], "'xml'", id="bad-choice"),
        pytest.param(["migrate", "--site", "s1"], "--site", id="site-after-command"),
    ],
)
def test_usage_errors(bench_dir: Path, args: list[str], needle: str) -> None:
    before = snapshot(bench_dir)
    assert_usage_error(run_cli(*args, cwd=bench_dir), needle)
    assert_unchanged(before, bench_dir)
