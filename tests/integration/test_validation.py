"""Invalid documents raise ValidationError, write nothing, and leave the transaction usable.

PostgreSQL aborts a whole transaction on a failed statement unless it ran under a savepoint, so
every case is followed by more work in the same transaction and a commit checked from a second
connection.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import jobbench
from jobbench.errors import (
    DuplicateEntryError,
    LinkValidationError,
    MandatoryError,
    ValidationError,
)
from jobbench.model.meta import SERIES

UTC_PLUS_2 = dt.timezone(dt.timedelta(hours=2))

# (fields of a new Task, exception, words the message must contain)
BAD_TASKS: list[tuple[dict[str, Any], type[Exception], list[str]]] = [
    ({"subject": "x", "priority": "high"}, ValidationError, ["Task", "priority", "'high'"]),
    ({"subject": "x", "priority": True}, ValidationError, ["Task", "priority", "True"]),
    ({"subject": "x", "priority": 1.5}, ValidationError, ["priority", "1.5"]),
    ({"subject": "x", "score": "1.5"}, ValidationError, ["score", "'1.5'"]),
    ({"subject": "x", "done": 2}, ValidationError, ["done", "2"]),
    ({"subject": "x", "amount": "lots"}, ValidationError, ["amount", "'lots'"]),
    ({"subject": "x", "due": "2024-02-30"}, ValidationError, ["due", "2024-02-30"]),
    ({"subject": "x", "due": dt.datetime(2024, 1, 1)}, ValidationError, ["due"]),
    ({"subject": "x", "starts": "yesterday"}, ValidationError, ["starts", "yesterday"]),
    ({"subject": "x", "data": {"s": {1, 2}}}, ValidationError, ["data"]),
    ({"subject": 42}, ValidationError, ["subject", "42"]),
    ({}, MandatoryError, ["Task", "subject"]),
    ({"subject": None}, MandatoryError, ["subject"]),
    ({"subject": ""}, MandatoryError, ["subject"]),
    ({"subject": "x", "status": "Bogus"}, ValidationError, ["status", "'Bogus'", "Open"]),
    ({"subject": "x", "parent_task": "TASK-9999"}, LinkValidationError, ["parent_task", "9999"]),
]

# Values no column of the three databases can hold the same way must be refused before SQL.
OUT_OF_RANGE: list[dict[str, Any]] = [
    {"priority": 2**63},
    {"priority": -(2**63) - 1},
    {"score": float("nan")},
    {"score": float("inf")},
    {"amount": Decimal("1000000000000")},  # NUMERIC(21, 9) holds 12 digits before the point
    {"amount": Decimal("NaN")},
    {"starts": dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC_PLUS_2)},  # stored naive: ambiguous
]


def series_counter(prefix: str = "TASK-") -> int | None:
    stmt = sa.select(SERIES.c.current).where(SERIES.c.name == prefix)
    return jobbench.db.execute(stmt).scalar()


def test_bad_values_raise_write_nothing_and_consume_no_series_number(ctx, peek, calls):
    for fields, error, words in BAD_TASKS:
        calls.clear()
        with pytest.raises(error) as info:
            jobbench.new_doc("Task", **fields).insert()
        for word in words:
            assert word in str(info.value), (fields, str(info.value))
        assert "after_insert" not in calls, fields
        assert jobbench.db.count("Task") == 0, fields

    assert series_counter() is None  # no failed insert reached the counter
    good = jobbench.new_doc("Task", subject="fine").insert()
    assert good.name == "TASK-0001"
    jobbench.db.commit()
    assert peek(lambda: jobbench.get_all("Task", pluck="name")) == ["TASK-0001"]


def test_values_out_of_every_databases_range_are_validation_errors(ctx, peek):
    for fields in OUT_OF_RANGE:
        field = next(iter(fields))
        with pytest.raises(ValidationError, match=field):
            jobbench.new_doc("Task", subject="range", **fields).insert()
        assert jobbench.db.count("Task") == 0, fields
    jobbench.new_doc("Task", subject="ok", priority=2**63 - 1, amount=Decimal("-1e11")).insert()
    jobbench.db.commit()
    assert peek(lambda: jobbench.db.get_value("Task", "TASK-0001", "priority")) == 2**63 - 1


def test_duplicate_name_is_refused_and_the_transaction_goes_on(ctx, peek):
    jobbench.new_doc("Note", title="dup", body="first").insert()
    with pytest.raises(DuplicateEntryError, match="Note 'dup'"):
        jobbench.new_doc("Note", title="dup", body="second").insert()
    assert jobbench.db.count("Note") == 1

    skipped = jobbench.new_doc("Note", title="dup", body="third").insert(ignore_if_duplicate=True)
    assert skipped.body == "third"
    assert jobbench.db.count("Note") == 1

    jobbench.new_doc("Note", title="other").insert()  # the transaction still works
    jobbench.db.commit()
    assert peek(lambda: jobbench.get_all("Note", fields=["name", "body"], order_by="name")) == [
        {"name": "dup", "body": "first"},
        {"name": "other", "body": None},
    ]


def test_a_duplicate_series_name_gives_its_number_back(ctx, peek):
    taken = jobbench.new_doc("Task", subject="squatter")
    taken.name = "TASK-0002"
    taken.insert()
    assert jobbench.new_doc("Task", subject="a").insert().name == "TASK-0001"
    assert series_counter() == 1

    with pytest.raises(DuplicateEntryError, match="TASK-0002"):
        jobbench.new_doc("Task", subject="b").insert()
    assert series_counter() == 1  # the increment was undone with the failed INSERT
    assert jobbench.db.count("Task") == 2
    jobbench.db.commit()
    assert peek(lambda: jobbench.db.count("Task")) == 2
    assert peek(series_counter) == 1


def test_unique_field_is_refused_on_insert_update_and_set_value(ctx, peek):
    first = jobbench.new_doc("Tag", label="red").insert()
    second = jobbench.new_doc("Tag", label="blue").insert()

    with pytest.raises(DuplicateEntryError, match="label='red'"):
        jobbench.new_doc("Tag", label="red").insert()
    assert jobbench.db.count("Tag") == 2

    second.label = "red"
    with pytest.raises(DuplicateEntryError, match="Tag"):
        second.save()
    assert jobbench.db.get_value("Tag", second.name, "label") == "blue"

    with pytest.raises(DuplicateEntryError):
        jobbench.db.set_value("Tag", second.name, "label", "red")
    assert jobbench.db.get_value("Tag", second.name, "label") == "blue"

    jobbench.new_doc("Tag", label="green").insert()  # the transaction still works
    jobbench.db.commit()
    assert peek(lambda: sorted(jobbench.get_all("Tag", pluck="label"))) == [
        "blue",
        "green",
        "red",
    ]
    assert peek(lambda: jobbench.db.get_value("Tag", first.name, "label")) == "red"


def test_max_length_and_name_length(ctx):
    jobbench.new_doc("Tag", label="x" * 20).insert()
    with pytest.raises(ValidationError, match="label"):
        jobbench.new_doc("Tag", label="y" * 21).insert()
    with pytest.raises(ValidationError, match="255"):
        jobbench.new_doc("Note", title="n" * 256).insert()
    assert jobbench.db.count("Tag") == 1
    assert jobbench.db.count("Note") == 0
    assert jobbench.new_doc("Note", title="n" * 255).insert().name == "n" * 255


def test_an_invalid_update_changes_nothing(ctx, peek, calls):
    doc = jobbench.new_doc("Task", subject="stable", priority=1).insert()
    jobbench.db.commit()
    for field, value in [("priority", "x"), ("status", "Nope"), ("subject", None)]:
        loaded = jobbench.get_doc("Task", doc.name)
        setattr(loaded, field, value)
        calls.clear()
        with pytest.raises(ValidationError, match=field):
            loaded.save()
        assert "on_update" not in calls
    loaded = jobbench.get_doc("Task", doc.name)
    loaded.parent_task = "TASK-0404"
    with pytest.raises(LinkValidationError):
        loaded.save()
    jobbench.db.commit()
    stored = peek(lambda: jobbench.get_doc("Task", doc.name))
    assert (stored.subject, stored.priority, stored.status, stored.parent_task) == (
        "stable",
        1,
        "Open",
        None,
    )
    assert stored.modified == doc.modified


def test_link_to_an_existing_document_is_accepted(ctx):
    parent = jobbench.new_doc("Task", subject="parent").insert()
    child = jobbench.new_doc("Task", subject="child", parent_task=parent.name).insert()
    assert jobbench.db.get_value("Task", child.name, "parent_task") == parent.name
    with pytest.raises(LinkValidationError):
        jobbench.new_doc("Task", subject="orphan", parent_task="TASK-0404").insert()
    assert jobbench.db.count("Task") == 2


def test_a_controller_that_raises_in_validate_writes_nothing(site, bench, make_app):
    from jobbench.sites import install_app

    make_app(
        "vapp",
        hooks='doctypes = ["vapp.doctypes.Guarded"]\n',
        doctypes="""
        from jobbench import ValidationError
        from jobbench.model import Document

        class Guarded(Document):
            doctype = "Guarded"
            qty: int = 0

            def validate(self):
                if self.qty < 0:
                    raise ValidationError("Guarded: qty must not be negative")
        """,
    )
    install_app(bench, site, "vapp")
    with jobbench.site_context(site, bench.path):
        with pytest.raises(ValidationError, match="negative"):
            jobbench.new_doc("Guarded", qty=-1).insert()
        assert jobbench.db.count("Guarded") == 0
        jobbench.new_doc("Guarded", qty=1).insert()
        assert jobbench.db.count("Guarded") == 1
