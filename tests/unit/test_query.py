"""Filter, field and order_by parsing: every name is checked, every operator known."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

import jobbench
from jobbench.bench import Bench
from jobbench.errors import ValidationError
from jobbench.model import Document, Field
from jobbench.model.meta import build_meta
from jobbench.model.query import _conditions, _order


class Item(Document):
    doctype = "Item"
    title: str
    qty: int = 0
    state: str = Field("New", options=["New", "Done"])


META = build_meta(Item)

# --- direct parsing against a DocMeta (no database) ------------------------------------------


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"nope": 1}, "Item has no field 'nope'"),
        ({"title; DROP TABLE x": 1}, "has no field"),
        ([["nope", "=", 1]], "Item has no field 'nope'"),
        ([["Item", "nope", "=", 1]], "Item has no field 'nope'"),
        ([["qty", "===", 1]], "unknown filter operator '==='"),
        ([["qty", "equals", 1]], "unknown filter operator 'equals'"),
        ([["qty", "="]], "must be \\[field, operator, value\\]"),
        ([["qty", "=", 1, 2, 3]], "must be \\[field, operator, value\\]"),
        ({"qty": ("=", 1, 2)}, "must be \\[field, operator, value\\]"),
        ({"qty": ["between", [1, 2, 3]]}, "'between' needs two values"),
        ({"qty": ["is", "maybe"]}, "'is' takes 'set' or 'not set'"),
        (42, "filters must be a name, a dict or a list"),
    ],
)
def test_bad_filters_raise_validation_error(filters: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _conditions(META, filters)


@pytest.mark.parametrize("filters", [None, {}, []])
def test_empty_filters_give_no_conditions(filters: Any) -> None:
    assert _conditions(META, filters) == []


def test_a_string_filter_is_a_name() -> None:
    (condition,) = _conditions(META, "ITEM-1")

    assert str(condition.compile(compile_kwargs={"literal_binds": True})) == (
        "\"tabItem\".name = 'ITEM-1'"
    )


@pytest.mark.parametrize(
    "order_by",
    ["nope", "qty sideways", "qty desc extra", "qty, ", "qty; drop table x", "count(qty)"],
)
def test_bad_order_by_raises_validation_error(order_by: str) -> None:
    with pytest.raises(ValidationError):
        _order(META, order_by)


def test_order_by_accepts_fields_and_directions() -> None:
    clauses = _order(META, "qty desc, title ASC, `name`")

    sql = [str(c.compile(dialect=sqlite.dialect())) for c in clauses]
    assert sql == ['"tabItem".qty DESC', '"tabItem".title', '"tabItem".name']


# --- through the facade on a real SQLite site ------------------------------------------------


@pytest.fixture
def tasks(sqlite_site: Bench) -> Iterator[None]:
    """Tasks on site s1: TASK-0001..0004, with the facade's site context open."""
    with jobbench.site_context("s1", sqlite_site.path):
        for subject, status, priority, score in [
            ("alpha", "Open", 1, 1.5),
            ("beta", "Working", 2, None),
            ("gamma", "Closed", 3, 3.5),
            ("delta", "Open", 4, None),
        ]:
            jobbench.new_doc(
                "Task", subject=subject, status=status, priority=priority, score=score
            ).insert()
        jobbench.db.commit()
        yield


def names(filters: Any) -> list[str]:
    return jobbench.get_all("Task", filters=filters, pluck="name", order_by="name")


@pytest.mark.usefixtures("tasks")
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "Open"}, ["TASK-0001", "TASK-0004"]),
        ({"priority": (">", 2)}, ["TASK-0003", "TASK-0004"]),
        ({"priority": [">=", 2], "status": "Open"}, ["TASK-0004"]),
        ([["priority", "<", 3]], ["TASK-0001", "TASK-0002"]),
        ([["Task", "priority", "<=", 1]], ["TASK-0001"]),
        ({"status": ["in", ["Working", "Closed"]]}, ["TASK-0002", "TASK-0003"]),
        ({"status": ["in", "Working, Closed"]}, ["TASK-0002", "TASK-0003"]),
        ({"status": ["not in", ["Open"]]}, ["TASK-0002", "TASK-0003"]),
        ({"subject": ["like", "%ta"]}, ["TASK-0002", "TASK-0004"]),
        ({"subject": ["not like", "%ta"]}, ["TASK-0001", "TASK-0003"]),
        ({"priority": ["between", [2, 3]]}, ["TASK-0002", "TASK-0003"]),
        ({"score": ["is", "set"]}, ["TASK-0001", "TASK-0003"]),
        ({"score": ["is", "not set"]}, ["TASK-0002", "TASK-0004"]),
        ({"score": None}, ["TASK-0002", "TASK-0004"]),
        ({"score": ["!=", 1.5]}, ["TASK-0002", "TASK-0003", "TASK-0004"]),  # NULL counts as !=
        ({"score": ["<>", 1.5]}, ["TASK-0002", "TASK-0003", "TASK-0004"]),
        ([["status", " IN ", ["Closed"]]], ["TASK-0003"]),  # operators are case-insensitive
        ({"status": ["IN", ["Closed"]]}, ["TASK-0003"]),
        ({"subject": ("LIKE", "g%")}, ["TASK-0003"]),
        ("TASK-0002", ["TASK-0002"]),
    ],
)
def test_get_all_filters(filters: Any, expected: list[str]) -> None:
    assert names(filters) == expected


@pytest.mark.usefixtures("tasks")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": {"nope": 1}}, "Task has no field 'nope'"),
        ({"filters": [["status", "~", "Open"]]}, "unknown filter operator '~'"),
        ({"filters": {"status": ["between", ["a"]]}}, "'between' needs two values"),
        ({"fields": ["name", "nope"]}, "Task has no field 'nope'"),
        ({"fields": "name, count(*)"}, "has no field 'count\\(\\*\\)'"),
        ({"order_by": "nope desc"}, "Task has no field 'nope'"),
        ({"order_by": "subject up"}, "must look like"),
        ({"pluck": "nope"}, "Task has no field 'nope'"),
    ],
)
def test_get_all_bad_input_raises_validation_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        jobbench.get_all("Task", **kwargs)


@pytest.mark.usefixtures("tasks")
def test_get_all_fields_limit_and_order() -> None:
    rows = jobbench.get_all(
        "Task", fields=["name", "subject"], order_by="priority desc", limit=2, start=1
    )

    assert rows == [
        {"name": "TASK-0003", "subject": "gamma"},
        {"name": "TASK-0002", "subject": "beta"},
    ]
    assert rows[0].subject == "gamma"


@pytest.mark.usefixtures("tasks")
def test_db_helpers_check_filters_too() -> None:
    with pytest.raises(ValidationError, match="has no field 'nope'"):
        jobbench.db.exists("Task", {"nope": 1})
    with pytest.raises(ValidationError, match="has no field 'nope'"):
        jobbench.db.count("Task", {"nope": 1})
    with pytest.raises(ValidationError, match="unknown filter operator"):
        jobbench.db.get_value("Task", [["status", "bad op", 1]], "subject")

    assert jobbench.db.count("Task", {"status": "Open"}) == 2
    assert jobbench.db.exists("Task", {"subject": "gamma"}) == "TASK-0003"
    assert jobbench.db.get_value("Task", {"subject": "beta"}, ["name", "priority"]) == (
        "TASK-0002",
        2,
    )
