"""get_all / get_value / set_value / exists / count against real databases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import jobbench
from jobbench.errors import DoesNotExistError, ValidationError

# subject, status, priority, score, done, due, parent_task, amount
ROWS = [
    ("alpha one", "Open", 1, 1.5, False, dt.date(2024, 1, 1), None, Decimal("5")),
    ("alpha two", "Working", 2, None, True, dt.date(2024, 1, 10), "TASK-0001", Decimal("12.5")),
    ("beta three", "Closed", 3, 3.5, False, None, "TASK-0001", Decimal("100")),
    ("beta four", "Open", 4, 4.5, True, dt.date(2024, 2, 1), None, Decimal("-3")),
    ("gamma five", "Closed", 5, None, False, dt.date(2024, 3, 1), "TASK-0002", None),
]


@pytest.fixture
def tasks(ctx):
    """Five tasks TASK-0001..TASK-0005, created one day apart (TASK-0005 newest)."""
    for i, (subject, status, prio, score, done, due, parent, amount) in enumerate(ROWS):
        doc = jobbench.new_doc(
            "Task",
            subject=subject,
            status=status,
            priority=prio,
            score=score,
            done=done,
            due=due,
            parent_task=parent,
            amount=amount,
        )
        doc.creation = dt.datetime(2024, 1, 1, 12, 0) + dt.timedelta(days=i)
        doc.insert()
    jobbench.db.commit()
    return ctx


def names(filters=None, **kwargs):
    kwargs.setdefault("order_by", "name asc")
    found = jobbench.get_all("Task", filters=filters, pluck="name", **kwargs)
    return [int(n.rsplit("-", 1)[1]) for n in found]


FILTER_CASES = [
    ({"status": "Open"}, [1, 4]),
    ([["status", "=", "Open"]], [1, 4]),
    ([["Task", "status", "=", "Open"]], [1, 4]),
    ({"status": ["!=", "Open"]}, [2, 3, 5]),
    ({"score": ["!=", 1.5]}, [2, 3, 4, 5]),  # != keeps NULLs, as Frappe's ifnull does
    ({"priority": [">", 3]}, [4, 5]),
    ({"priority": ("<", 2)}, [1]),
    ({"priority": [">=", 4]}, [4, 5]),
    ({"priority": ["<=", 2]}, [1, 2]),
    ([["priority", "<>", 3]], [1, 2, 4, 5]),
    ({"status": ["in", ["Working", "Closed"]]}, [2, 3, 5]),
    ({"status": ["in", "Working, Closed"]}, [2, 3, 5]),
    ({"status": ["in", []]}, []),
    ({"status": ["not in", ["Open"]]}, [2, 3, 5]),
    ({"subject": ["like", "alpha%"]}, [1, 2]),
    ({"subject": ["like", "%t%"]}, [2, 3, 4]),
    ([["subject", "not like", "alpha%"]], [3, 4, 5]),
    ({"priority": ["between", [2, 4]]}, [2, 3, 4]),
    ({"due": ["between", [dt.date(2024, 1, 5), dt.date(2024, 2, 15)]]}, [2, 4]),
    ({"score": ["is", "set"]}, [1, 3, 4]),
    ({"score": ["is", "not set"]}, [2, 5]),
    ([["parent_task", "is", "set"]], [2, 3, 5]),
    ({"parent_task": "TASK-0001"}, [2, 3]),
    ({"parent_task": None}, [1, 4]),
    ({"done": True}, [2, 4]),
    ({"done": 0}, [1, 3, 5]),
    ({"due": [">", "2024-01-15"]}, [4, 5]),
    ({"creation": [">=", dt.datetime(2024, 1, 4)]}, [4, 5]),
    ({"status": "Open", "priority": [">", 1]}, [4]),
    ([["status", "=", "Closed"], ["score", "is", "not set"]], [5]),
    ("TASK-0003", [3]),
    ({"status": "Nobody"}, []),
]
DECIMAL_CASES = [
    ({"amount": [">", 6]}, [2, 3]),
    ({"amount": ["<", 0]}, [4]),
    ({"amount": ["between", [Decimal("5"), Decimal("50")]]}, [1, 2]),
    ({"amount": Decimal("12.50")}, [2]),
    ({"amount": 100}, [3]),
    ({"amount": ["in", [Decimal("5.0"), Decimal("-3")]]}, [1, 4]),
]


def check_cases(cases):
    """Run every (filters, expected names) case; report all mismatches at once."""
    wrong = []
    for filters, expected in cases:
        got = names(filters)
        count = jobbench.db.count("Task", filters)
        if got != expected or count != len(expected):
            wrong.append(f"{filters!r}: got {got} (count {count}), expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_get_all_filters(tasks):
    check_cases(FILTER_CASES)


def test_get_all_compares_decimals_as_numbers(tasks):
    check_cases(DECIMAL_CASES)


def test_get_all_orders_decimals_as_numbers(tasks):
    got = jobbench.get_all(
        "Task", {"amount": ["is", "set"]}, pluck="amount", order_by="amount desc"
    )
    assert got == [Decimal("100"), Decimal("12.5"), Decimal("5"), Decimal("-3")]


def test_get_all_fields_order_limit_start_and_pluck(tasks):
    rows = jobbench.get_all(
        "Task", filters={"status": "Open"}, fields=["name", "subject", "done"], order_by="name"
    )
    assert rows == [
        {"name": "TASK-0001", "subject": "alpha one", "done": False},
        {"name": "TASK-0004", "subject": "beta four", "done": True},
    ]
    assert rows[1].subject == "beta four"  # attribute access, like frappe._dict
    assert rows[1].done is True

    assert jobbench.get_all("Task", fields="name, priority", order_by="priority desc", limit=1) == [
        {"name": "TASK-0005", "priority": 5}
    ]
    star = jobbench.get_all("Task", filters="TASK-0001", fields=["*"])[0]
    assert star.subject == "alpha one" and star.due == dt.date(2024, 1, 1) and star.owner

    # default order is newest creation first, like Frappe
    assert names(order_by="creation desc") == [5, 4, 3, 2, 1]
    assert jobbench.get_all("Task", pluck="name")[0] == "TASK-0005"
    assert names(order_by="priority desc") == [5, 4, 3, 2, 1]
    assert names(order_by="status asc, priority desc") == [5, 3, 4, 1, 2]
    assert names(order_by="priority asc", limit=2) == [1, 2]
    assert names(order_by="priority asc", limit=2, start=2) == [3, 4]
    assert names(order_by="priority asc", limit_page_length=2, limit_start=4) == [5]
    assert names(order_by="priority asc", start=3) == [4, 5]
    assert jobbench.get_all("Task", {"status": "Closed"}, pluck="subject", order_by="name") == [
        "beta three",
        "gamma five",
    ]
    assert jobbench.get_list("Task", filters={"done": True}, pluck="name", order_by="name") == [
        "TASK-0002",
        "TASK-0004",
    ]


BAD_ARGUMENTS = [
    {"filters": {"no_such_field": 1}},
    {"filters": [["status", "~", "Open"]]},
    {"filters": [["status", "Open"]]},
    {"filters": {"score": ["is", "maybe"]}},
    {"filters": {"priority": ["between", [1]]}},
    {"fields": ["name", "password"]},
    {"order_by": "name; DROP TABLE tabTask"},
    {"order_by": "priority sideways"},
    {"pluck": "nope"},
    {"filters": 42},
]


def test_get_all_rejects_bad_arguments_with_validation_error(tasks):
    for kwargs in BAD_ARGUMENTS:
        with pytest.raises(ValidationError):
            jobbench.get_all("Task", **kwargs)
        assert jobbench.db.count("Task") == 5, kwargs  # the transaction is still fine


def test_get_value(tasks):
    db = jobbench.db
    assert db.get_value("Task", "TASK-0001", "subject") == "alpha one"
    assert db.get_value("Task", "TASK-0001") == "TASK-0001"
    assert db.get_value("Task", {"subject": "beta three"}, "priority") == 3
    assert db.get_value("Task", [["subject", "like", "gamma%"]], "name") == "TASK-0005"
    assert db.get_value("Task", "TASK-0002", ["subject", "done", "score"]) == (
        "alpha two",
        True,
        None,
    )
    as_dict = db.get_value("Task", "TASK-0004", ["status", "priority"], as_dict=True)
    assert as_dict == {"status": "Open", "priority": 4}
    assert as_dict.priority == 4
    assert db.get_value("Task", "TASK-0004", "priority", as_dict=True) == {"priority": 4}
    assert db.get_value("Task", {"status": "Closed"}, "name", order_by="priority desc") == (
        "TASK-0005"
    )
    assert db.get_value("Task", "TASK-9999", "subject") is None
    assert db.get_value("Task", {"status": "Nobody"}, ["subject", "done"]) is None
    with pytest.raises(ValidationError):
        db.get_value("Task", "TASK-0001", "nope")


def test_set_value(tasks, peek):
    db = jobbench.db
    before = db.get_value("Task", "TASK-0001", "modified")
    db.set_value("Task", "TASK-0001", "subject", "renamed")
    db.set_value("Task", "TASK-0001", {"priority": 10, "done": True, "due": "2025-05-05"})
    jobbench.db.commit()
    got = peek(
        lambda: jobbench.db.get_value(
            "Task", "TASK-0001", ["subject", "priority", "done", "due", "modified"]
        )
    )
    assert got[:4] == ("renamed", 10, True, dt.date(2025, 5, 5))
    assert got[4] > before

    untouched = db.get_value("Task", "TASK-0002", "modified")
    db.set_value("Task", "TASK-0002", "priority", 20, update_modified=False)
    assert db.get_value("Task", "TASK-0002", ["priority", "modified"]) == (20, untouched)
    db.set_value("Task", "TASK-0002", "priority", 20, update_modified=False)  # no change: fine

    db.set_value("Task", {"status": "Closed"}, "score", 9.5)  # filters update every match
    assert names({"score": 9.5}) == [3, 5]


def test_set_value_rejects_bad_values_and_missing_documents(tasks):
    db = jobbench.db
    with pytest.raises(ValidationError, match="priority"):
        db.set_value("Task", "TASK-0001", "priority", "high")
    with pytest.raises(ValidationError, match="status"):
        db.set_value("Task", "TASK-0001", "status", "Bogus")
    with pytest.raises(ValidationError, match="subject"):
        db.set_value("Task", "TASK-0001", "subject", None)
    with pytest.raises(ValidationError):
        db.set_value("Task", "TASK-0001", "name", "TASK-0100")
    with pytest.raises(ValidationError):
        db.set_value("Task", "TASK-0001", "nope", 1)
    with pytest.raises(DoesNotExistError):
        db.set_value("Task", "TASK-0404", "priority", 1)
    assert db.get_value("Task", "TASK-0001", ["priority", "status", "subject"]) == (
        1,
        "Open",
        "alpha one",
    )
    db.set_value("Task", "TASK-0001", "priority", 2)  # still usable afterwards
    assert db.get_value("Task", "TASK-0001", "priority") == 2


def test_exists_and_count(tasks):
    db = jobbench.db
    assert db.exists("Task", "TASK-0003") == "TASK-0003"
    assert db.exists("Task", "TASK-0404") is None
    assert db.exists("Task", {"subject": "beta three"}) == "TASK-0003"
    assert db.exists("Task", {"subject": "nobody"}) is None
    assert db.exists("Task", [["priority", ">", 4]]) == "TASK-0005"
    assert db.count("Task") == 5
    assert db.count("Task", {"status": "Open"}) == 2
    assert db.count("Note") == 0
    assert db.exists("System Settings") == "System Settings"
