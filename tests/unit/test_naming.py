"""Naming rules: hash, field:x, series with counters and date parts, bad rules."""

from __future__ import annotations

import re
from datetime import date

import pytest

import jobbench
from jobbench.bench import Bench
from jobbench.errors import MandatoryError, ValidationError
from jobbench.model import Document
from jobbench.model.naming import is_series, make_hash, make_name, parse_series


class Invoice(Document):
    doctype = "Invoice"
    naming = "INV-.YYYY.-.###"

    amount: int = 0


class Monthly(Document):
    doctype = "Monthly"
    naming = "M.YY.MM.DD.-.#####.-X"


class TwoCounters(Document):
    doctype = "Two Counters"
    naming = "A-.##.-.##"


class NoRule(Document):
    doctype = "No Rule"
    naming = "autoincrement"


class Prompted(Document):
    doctype = "Prompted"
    naming = "prompt"


# --- hash ------------------------------------------------------------------------------------


def test_hash_is_ten_hex_chars_and_distinct() -> None:
    names = [make_hash() for _ in range(2000)]

    assert all(re.fullmatch(r"[0-9a-f]{10}", n) for n in names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("length", [1, 5, 10, 11, 32])
def test_hash_length_is_respected(length: int) -> None:
    assert len(make_hash(length)) == length


# --- series parsing --------------------------------------------------------------------------


def test_is_series() -> None:
    assert is_series("TASK-.####")
    assert not is_series("hash")
    assert not is_series("field:title")


@pytest.mark.parametrize(
    ("rule", "today", "expected"),
    [
        ("TASK-.####", date(2024, 1, 2), ("TASK-", 4, "")),
        ("INV-.YYYY.-.###", date(2024, 3, 5), ("INV-2024-", 3, "")),
        ("INV-.YY.MM.DD.-.#####", date(2031, 11, 9), ("INV-311109-", 5, "")),
        ("M.YY.MM.DD.-.#####.-X", date(2024, 3, 5), ("M240305-", 5, "-X")),
        (".###", date(2024, 1, 1), ("", 3, "")),
        ("PRE.#", date(2024, 1, 1), ("PRE", 1, "")),
        ("YYYYMM.-.##", date(2024, 3, 5), ("YYYYMM-", 2, "")),  # only whole parts are dates
    ],
)
def test_parse_series(rule: str, today: date, expected: tuple[str, int, str]) -> None:
    assert parse_series(rule, today) == expected


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("TASK-", "no counter"),
        ("TASK-.#A#", "no counter"),
        ("A-.##.-.##", "more than one counter"),
    ],
)
def test_parse_series_bad_rules(rule: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_series(rule, date(2024, 1, 1))


# --- names on a real site (SQLite) -----------------------------------------------------------


def test_series_names_count_up_per_doctype(sqlite_site: Bench) -> None:
    with jobbench.site_context("s1", sqlite_site.path):
        first = jobbench.new_doc("Task", subject="one").insert()
        second = jobbench.new_doc("Task", subject="two").insert()
        jobbench.db.commit()

        assert (first.name, second.name) == ("TASK-0001", "TASK-0002")
        assert jobbench.get_all("Task", pluck="name", order_by="name") == [
            "TASK-0001",
            "TASK-0002",
        ]


def test_series_counter_survives_contexts_and_rollback_returns_the_number(
    sqlite_site: Bench,
) -> None:
    with jobbench.site_context("s1", sqlite_site.path):
        jobbench.new_doc("Task", subject="one").insert()
        jobbench.db.commit()
        rolled_back = jobbench.new_doc("Task", subject="gone").insert()
        jobbench.db.rollback()

    with jobbench.site_context("s1", sqlite_site.path):
        again = jobbench.new_doc("Task", subject="two").insert()
        jobbench.db.commit()

    assert rolled_back.name == "TASK-0002"
    assert again.name == "TASK-0002"


def test_date_series_keys_the_counter_by_date_prefix(sqlite_site: Bench) -> None:
    with jobbench.site_context("s1", sqlite_site.path) as local:
        db = local.db
        names = [
            make_name(db, Invoice(), date(2024, 3, 5)),
            make_name(db, Invoice(), date(2024, 12, 31)),
            make_name(db, Invoice(), date(2025, 1, 1)),
            make_name(db, Invoice(), date(2024, 6, 1)),
            make_name(db, Monthly(), date(2024, 3, 5)),
        ]

    assert names == [
        "INV-2024-001",
        "INV-2024-002",
        "INV-2025-001",
        "INV-2024-003",
        "M240305-00001-X",
    ]


def test_counter_wider_than_its_width_keeps_counting(sqlite_site: Bench) -> None:
    class Tiny(Document):
        doctype = "Tiny"
        naming = "T-.#"

    with jobbench.site_context("s1", sqlite_site.path) as local:
        names = [make_name(local.db, Tiny(), date(2024, 1, 1)) for _ in range(11)]

    assert names[0] == "T-1"
    assert names[8:] == ["T-9", "T-10", "T-11"]


def test_field_naming_uses_the_field_value(sqlite_site: Bench) -> None:
    with jobbench.site_context("s1", sqlite_site.path):
        note = jobbench.new_doc("Note", title="  Shopping list ").insert()

        assert note.name == "Shopping list"
        assert jobbench.db.exists("Note", "Shopping list") == "Shopping list"


def test_field_naming_without_the_field_is_mandatory_error(sqlite_site: Bench) -> None:
    with jobbench.site_context("s1", sqlite_site.path):
        note = jobbench.new_doc("Note")
        note.title = ""  # checked as a required field before naming

        with pytest.raises(MandatoryError, match="Note: field 'title' is required"):
            note.insert()
        assert jobbench.get_all("Note") == []


def test_field_naming_rule_itself_requires_the_value(sqlite_site: Bench) -> None:
    class Keyed(Document):
        doctype = "Keyed"
        naming = "field:code"
        code: str | None = None

    with (
        jobbench.site_context("s1", sqlite_site.path) as local,
        pytest.raises(MandatoryError, match="Keyed: field 'code' is required because it names"),
    ):
        make_name(local.db, Keyed(), date(2024, 1, 1))


def test_hash_naming_on_insert(sqlite_site: Bench) -> None:
    with jobbench.site_context("s1", sqlite_site.path):
        one = jobbench.new_doc("Tag", label="a").insert()
        two = jobbench.new_doc("Tag", label="b").insert()

    assert re.fullmatch(r"[0-9a-f]{10}", one.name)
    assert re.fullmatch(r"[0-9a-f]{10}", two.name)
    assert one.name != two.name


def test_explicit_name_is_kept(sqlite_site: Bench) -> None:
    with jobbench.site_context("s1", sqlite_site.path):
        task = jobbench.new_doc("Task", subject="x")
        task.name = "MY-TASK"
        task.insert()

        assert task.name == "MY-TASK"
        assert jobbench.db.get_value("Task", "MY-TASK", "subject") == "x"
        # An explicit name does not use up a series number.
        assert jobbench.new_doc("Task", subject="y").insert().name == "TASK-0001"


@pytest.mark.parametrize(
    ("cls", "error", "message"),
    [
        (TwoCounters, ValidationError, "more than one counter"),
        (NoRule, ValidationError, "unknown naming rule 'autoincrement'"),
        (Prompted, MandatoryError, "set doc.name before saving"),
    ],
)
def test_bad_rules_raise_jobbench_errors(
    sqlite_site: Bench, cls: type[Document], error: type[Exception], message: str
) -> None:
    with (
        jobbench.site_context("s1", sqlite_site.path) as local,
        pytest.raises(error, match=message) as info,
    ):
        make_name(local.db, cls(), date(2024, 1, 1))
    assert cls.get_meta().doctype in str(info.value)
