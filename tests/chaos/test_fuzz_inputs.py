"""Fuzzed names and files: every name check refuses a name holding a control character (a
trailing newline above all, which ``$`` in a regex lets through); ``printable`` leaves nothing
unprintable; random bytes or deeply nested JSON as a config file give a dict or a ConfigError,
never another exception."""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobbench import config
from jobbench.bench import SITE_NAME_RE, Bench, init_bench
from jobbench.errors import AppError, ConfigError, SiteError
from jobbench.model.database import _savepoint_name
from jobbench.setup import check_path, service_user
from jobbench.sites import APP_NAME_RE, DB_NAME_RE, check_app_name, new_site
from jobbench.utils import printable

LONG = "--chaos-long" in sys.argv
MANY = settings(
    max_examples=2000 if LONG else 200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(
    max_examples=400 if LONG else 60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Characters every name check accepts somewhere, so a refusal is down to the control character.
PLAIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
CONTROL = st.one_of(
    st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b", "\x07", "\x7f", "\x85", "\u2028", "\u202e"]),
    st.characters(categories=["Cc", "Cf", "Zl", "Zp"]),
)


@st.composite
def names_with_a_control_character(draw: st.DrawFn) -> str:
    """A plain name with a control character at its end (the ``$`` case), start or middle."""
    head, tail, bad = draw(PLAIN), draw(PLAIN), draw(CONTROL)
    where = draw(st.sampled_from(["end", "start", "middle"]))
    if where == "end":
        return "a" + head + bad
    return bad + "a" + head if where == "start" else "a" + head + bad + tail


BAD_NAMES = names_with_a_control_character()


@MANY
@given(name=BAD_NAMES)
def test_site_names_with_a_control_character_are_refused(name: str) -> None:
    assert SITE_NAME_RE.fullmatch(name) is None
    assert SITE_NAME_RE.match(name) is None  # \Z: also refused by a caller using .match()


@FEW
@given(name=BAD_NAMES)
def test_new_site_refuses_them_and_creates_nothing(bench_for_names: Bench, name: str) -> None:
    before = sorted(p.name for p in bench_for_names.sites_path.iterdir())
    with pytest.raises(SiteError, match="invalid site name"):
        new_site(bench_for_names, name)
    assert sorted(p.name for p in bench_for_names.sites_path.iterdir()) == before
    assert not bench_for_names.site_exists(name)


@MANY
@given(name=BAD_NAMES)
def test_queue_names_with_a_control_character_are_refused(name: str) -> None:
    assert config.QUEUE_NAME_RE.match(name) is None
    with pytest.raises(ConfigError, match="workers"):
        config.validate({"workers": {name: {"timeout": 60}}}, "fuzz")


@MANY
@given(name=BAD_NAMES)
def test_database_app_and_savepoint_names_with_a_control_character_are_refused(name: str) -> None:
    assert DB_NAME_RE.match(name) is None and APP_NAME_RE.match(name) is None
    with pytest.raises(AppError, match="invalid app name"):
        check_app_name(name)
    with pytest.raises(ValueError, match="savepoint"):
        _savepoint_name(name, sa.create_engine("sqlite://").dialect)


@MANY
@given(name=BAD_NAMES)
def test_setup_refuses_such_users_and_paths(name: str) -> None:
    with pytest.raises(ConfigError, match="not a user name"):
        service_user(name.lower(), allow_root=True)
    with pytest.raises(ConfigError, match="unit file"):
        check_path("the bench folder", f"/srv/{name}/bench")


@MANY
@given(text=st.text())
def test_printable_leaves_nothing_unprintable(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()
    if text.isprintable():
        assert shown == text
    assert "\n" not in shown and "\x1b" not in shown


# -- config files -------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
KNOWN = st.sampled_from(sorted(config.KNOWN_KEYS))


def _read(folder: Path, data: bytes) -> None:
    """Write ``data`` as a config file and read it: a dict or ConfigError, nothing else. A new
    path each time, so the mtime/size cache can never hand back an earlier example."""
    path = folder / f"{uuid.uuid4().hex}.json"
    path.write_bytes(data)
    for read in (config.read_json, config.read_json_shared):
        with contextlib.suppress(ConfigError):
            assert isinstance(read(path), dict)


@FEW
@given(data=st.binary(max_size=400))
def test_random_bytes_as_a_config_file_give_config_error_or_a_dict(
    tmp_path: Path, data: bytes
) -> None:
    _read(tmp_path, data)


@FEW
@given(key=KNOWN | st.text(max_size=10), value=JSON_VALUES, cut=st.integers(0, 200))
def test_mangled_json_config_gives_config_error_or_a_dict(
    tmp_path: Path, key: str, value: object, cut: int
) -> None:
    text = json.dumps({key: value})
    _read(tmp_path, text.encode())
    _read(tmp_path, text[: max(1, len(text) - cut)].encode())  # cut short: malformed


@FEW
@given(
    depth=st.integers(1, 20_000),
    opener=st.sampled_from(["[", '{"k":']),
    digits=st.integers(1, 6000),
    escape=st.sampled_from(["\\ud800", "\\udfff", "\\u0000", "\\u001b", "x"]),
)
def test_deep_long_and_odd_json_gives_config_error_or_a_dict(
    tmp_path: Path, depth: int, opener: str, digits: int, escape: str
) -> None:
    closer = "]" if opener == "[" else "}"
    deep = opener * depth + "1" + closer * depth
    _read(tmp_path, f'{{"x": {deep}}}'.encode())
    _read(tmp_path, f'{{"x": {"7" * digits}}}'.encode())
    _read(tmp_path, f'{{"x": "{escape}", "time_zone": "{escape}"}}'.encode())


@pytest.fixture
def bench_for_names(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return init_bench(tmp_path_factory.mktemp("names") / "bench")
