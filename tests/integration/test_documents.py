"""The document layer against real databases: CRUD, naming, types, defaults and hooks."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest

import jobbench
from jobbench.errors import DoesNotExistError, MandatoryError, ValidationError

ROUND_TRIP: dict[str, Any] = {
    "subject": "Ünïcödé ✓ 🚀 'quoted' \"double\" \\ back",
    "status": "Working",
    "priority": 2**53 + 1,
    "score": 0.1 + 0.2,
    "done": True,
    "amount": Decimal("12.345678901"),
    "due": dt.date(2024, 2, 29),
    "starts": dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
    "data": {"a": [1, 2.5, None, {"b": "ü", "c": [True, False]}], "n": None, "s": "x" * 300},
}


def assert_same_values(doc: Any, expected: dict[str, Any]) -> None:
    for field, value in expected.items():
        got = getattr(doc, field) if not isinstance(doc, dict) else doc[field]
        assert got == value, f"{field}: {got!r} != {value!r}"
        assert type(got) is type(value), f"{field}: {type(got)} is not {type(value)}"


def test_every_field_type_round_trips_exactly(ctx, peek):
    doc = jobbench.new_doc("Task", **ROUND_TRIP).insert()
    jobbench.db.commit()

    loaded = peek(lambda: jobbench.get_doc("Task", doc.name))
    assert_same_values(loaded, ROUND_TRIP)
    row = peek(lambda: jobbench.get_all("Task", fields=list(ROUND_TRIP))[0])
    assert_same_values(row, ROUND_TRIP)
    values = jobbench.db.get_value("Task", doc.name, list(ROUND_TRIP), as_dict=True)
    assert_same_values(values, ROUND_TRIP)


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("0"),
        Decimal("-0.000000001"),
        Decimal("999999999999.999999999"),
        Decimal("-999999999999.999999999"),
        Decimal("100"),
    ],
)
def test_decimal_extremes_round_trip(ctx, peek, amount):
    doc = jobbench.new_doc("Task", subject="money", amount=amount).insert()
    jobbench.db.commit()
    got = peek(lambda: jobbench.db.get_value("Task", doc.name, "amount"))
    assert isinstance(got, Decimal)
    assert got == amount


def test_false_zero_and_empty_values_are_not_confused_with_null(ctx):
    doc = jobbench.new_doc(
        "Task", subject="z", priority=0, score=0.0, done=False, amount=Decimal(0), data={}
    ).insert()
    jobbench.new_doc("Note", title="empty", body="").insert()
    assert jobbench.db.get_value("Note", "empty", "body") == ""
    loaded = jobbench.get_doc("Task", doc.name)
    assert loaded.priority == 0 and loaded.score == 0.0 and loaded.amount == 0
    assert loaded.done is False
    assert loaded.data == {}
    assert jobbench.db.count("Task", {"score": ["is", "set"]}) == 1
    assert jobbench.db.count("Task", {"due": ["is", "not set"]}) == 1


def test_defaults_on_new_doc_and_after_insert(ctx):
    doc = jobbench.new_doc("Task", subject="defaults")
    assert doc.is_new()
    assert (doc.status, doc.priority, doc.done) == ("Open", 0, False)
    assert doc.score is None and doc.data is None
    doc.insert()
    assert not doc.is_new()

    loaded = jobbench.get_doc("Task", doc.name)
    assert (loaded.status, loaded.priority, loaded.done) == ("Open", 0, False)
    assert loaded.score is None and loaded.amount is None and loaded.parent_task is None
    assert loaded.owner == "Administrator" and loaded.modified_by == "Administrator"
    assert isinstance(loaded.creation, dt.datetime)
    assert loaded.modified == loaded.creation


def test_owner_and_modified_by_follow_the_session_user(ctx):
    jobbench.set_user("alice@example.com")
    doc = jobbench.new_doc("Task", subject="mine").insert()
    jobbench.set_user("bob@example.com")
    doc.subject = "changed"
    doc.save()
    loaded = jobbench.get_doc("Task", doc.name)
    assert loaded.owner == "alice@example.com"
    assert loaded.modified_by == "bob@example.com"
    assert loaded.modified >= loaded.creation


def test_series_naming_increments_and_a_rollback_gives_the_number_back(ctx):
    first = jobbench.new_doc("Task", subject="a").insert()
    second = jobbench.new_doc("Task", subject="b").insert()
    assert (first.name, second.name) == ("TASK-0001", "TASK-0002")
    jobbench.db.commit()

    assert jobbench.new_doc("Task", subject="c").insert().name == "TASK-0003"
    jobbench.db.rollback()
    assert jobbench.new_doc("Task", subject="c2").insert().name == "TASK-0003"

    explicit = jobbench.new_doc("Task", subject="named")
    explicit.name = "MY-TASK"
    explicit.insert()
    assert explicit.name == "MY-TASK"
    assert jobbench.new_doc("Task", subject="d").insert().name == "TASK-0004"


def test_field_naming_uses_the_title(ctx):
    note = jobbench.new_doc("Note", title="Shopping list", body="milk").insert()
    assert note.name == "Shopping list"
    assert jobbench.get_doc("Note", "Shopping list").body == "milk"
    with pytest.raises(MandatoryError, match="title"):
        jobbench.new_doc("Note", body="no title").insert()
    assert jobbench.db.count("Note") == 1


def test_hash_naming_gives_distinct_hex_names(ctx):
    names = {jobbench.new_doc("Tag", label=f"t{i}").insert().name for i in range(5)}
    assert len(names) == 5
    assert all(re.fullmatch(r"[0-9a-f]{10}", n) for n in names)
    assert sorted(jobbench.get_all("Tag", pluck="name")) == sorted(names)


def test_get_doc_with_a_dict_builds_a_new_document(ctx):
    doc = jobbench.get_doc({"doctype": "Note", "title": "from dict", "body": "b"})
    assert doc.is_new()
    assert jobbench.db.count("Note") == 0
    doc.insert()
    assert jobbench.db.get_value("Note", "from dict", "body") == "b"
    with pytest.raises(MandatoryError):
        jobbench.get_doc({"title": "no doctype"})


def test_hooks_run_in_frappe_order_on_insert_update_and_delete(ctx, calls):
    doc = jobbench.new_doc("Task", subject="hooks")
    assert calls == []
    doc.insert()
    assert calls == ["before_insert", "validate", "after_insert", "on_update"]

    calls.clear()
    doc.subject = "hooks 2"
    doc.save()
    assert calls == ["validate", "on_update"]

    calls.clear()
    jobbench.delete_doc("Task", doc.name)
    assert calls == ["on_trash"]
    assert jobbench.db.exists("Task", doc.name) is None


def test_save_updates_an_existing_document(ctx, peek):
    doc = jobbench.new_doc("Task", subject="before").insert()
    jobbench.db.commit()
    created = doc.creation

    loaded = jobbench.get_doc("Task", doc.name)
    loaded.subject = "after"
    loaded.status = "Closed"
    loaded.data = {"k": [1]}
    loaded.save()
    jobbench.db.commit()

    fresh = peek(lambda: jobbench.get_doc("Task", doc.name))
    assert (fresh.subject, fresh.status, fresh.data) == ("after", "Closed", {"k": [1]})
    assert fresh.creation == created
    assert fresh.modified >= created
    assert peek(lambda: jobbench.db.count("Task")) == 1


def test_reload_reads_what_the_database_holds(ctx):
    doc = jobbench.new_doc("Task", subject="old", priority=1).insert()
    jobbench.db.set_value("Task", doc.name, {"subject": "new", "priority": 7})
    assert doc.subject == "old"
    assert doc.reload() is doc
    assert (doc.subject, doc.priority) == ("new", 7)
    assert not doc.is_new()


def test_get_doc_and_delete_doc_of_missing_documents(ctx):
    with pytest.raises(DoesNotExistError, match="TASK-0404"):
        jobbench.get_doc("Task", "TASK-0404")
    jobbench.delete_doc("Task", "TASK-0404")  # missing is fine by default
    with pytest.raises(DoesNotExistError):
        jobbench.delete_doc("Task", "TASK-0404", ignore_missing=False)
    with pytest.raises(MandatoryError):
        jobbench.get_doc("Task")


def test_delete_doc_removes_only_that_row(ctx, peek):
    keep = jobbench.new_doc("Task", subject="keep").insert()
    drop = jobbench.new_doc("Task", subject="drop").insert()
    jobbench.db.commit()
    jobbench.delete_doc("Task", drop.name)
    jobbench.db.commit()
    assert peek(lambda: jobbench.get_all("Task", pluck="name")) == [keep.name]
    with pytest.raises(DoesNotExistError):
        jobbench.get_doc("Task", drop.name)


def test_unknown_field_and_unknown_doctype(ctx):
    with pytest.raises(ValidationError, match="nope"):
        jobbench.new_doc("Task", subject="x", nope=1)
    with pytest.raises(jobbench.DocTypeNotFoundError, match="Nonexistent"):
        jobbench.new_doc("Nonexistent")
    with pytest.raises(jobbench.DocTypeNotFoundError):
        jobbench.get_all("Nonexistent")


def test_as_dict_and_get(ctx):
    doc = jobbench.new_doc("Task", subject="d", priority=3).insert()
    data = doc.as_dict()
    assert data["doctype"] == "Task" and data.name == doc.name and data.priority == 3
    assert doc.get("score", 1.5) == 1.5
    assert doc.get("not_a_field") is None


def test_decimals_are_rounded_to_nine_places_alike_on_every_database(ctx, peek):
    doc = jobbench.new_doc("Task", subject="round", amount=Decimal("1.0000000005")).insert()
    jobbench.db.commit()
    assert peek(lambda: jobbench.db.get_value("Task", doc.name, "amount")) == Decimal("1.000000001")
