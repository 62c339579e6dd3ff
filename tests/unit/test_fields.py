"""Field specs from annotations, and coercion of values to each field kind."""

from __future__ import annotations

import datetime as dt
import typing
from decimal import Decimal
from typing import Annotated, Any

import pytest

from jobbench.model.fields import (
    MISSING,
    Field,
    FieldInfo,
    FieldSpec,
    build_spec,
    coerce,
    from_text,
    to_text,
)


def spec(kind: str, **kwargs: Any) -> FieldSpec:
    return FieldSpec("f", kind, nullable=True, **kwargs)


# --- coercion: accepted values ---------------------------------------------------------------

D = dt.date(2024, 2, 29)
DT = dt.datetime(2024, 2, 29, 13, 45, 10, 123456)
T = dt.time(13, 45, 10)

ACCEPTED: list[tuple[str, Any, Any]] = [
    ("str", "hello", "hello"),
    ("str", "", ""),
    ("int", 0, 0),
    ("int", -7, -7),
    ("int", 2**40, 2**40),
    ("float", 1.5, 1.5),
    ("float", 3, 3.0),
    ("bool", True, True),
    ("bool", False, False),
    ("bool", 1, True),
    ("bool", 0, False),
    ("decimal", Decimal("1.10"), Decimal("1.10")),
    ("decimal", 3, Decimal(3)),
    ("decimal", "12.345", Decimal("12.345")),
    ("decimal", 0.1, Decimal("0.1")),  # via repr: no binary noise
    ("date", D, D),
    ("date", "2024-02-29", D),
    ("datetime", DT, DT),
    ("datetime", "2024-02-29T13:45:10.123456", DT),
    ("datetime", "2024-02-29 13:45:10.123456", DT),
    ("time", T, T),
    ("time", "13:45:10", T),
    ("json", {"a": [1, 2, {"b": None}]}, {"a": [1, 2, {"b": None}]}),
    ("json", [1, "x"], [1, "x"]),
    ("json", "text", "text"),
    ("json", 5, 5),
]


@pytest.mark.parametrize(("kind", "value", "expected"), ACCEPTED)
def test_coerce_accepts_values_of_the_kind(kind: str, value: Any, expected: Any) -> None:
    result = coerce(spec(kind), value)

    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("kind", ["str", "int", "float", "bool", "decimal", "date", "json"])
def test_coerce_none_is_none_for_every_kind(kind: str) -> None:
    assert coerce(spec(kind), None) is None


# --- coercion: rejected values ---------------------------------------------------------------

REJECTED: list[tuple[str, Any, str]] = [
    ("str", 5, "a string"),
    ("str", b"bytes", "a string"),
    ("str", ["a"], "a string"),
    ("int", True, "an integer"),  # bool is not an int here
    ("int", False, "an integer"),
    ("int", 1.0, "an integer"),
    ("int", "1", "an integer"),
    ("int", Decimal(1), "an integer"),
    ("float", True, "a number"),
    ("float", "1.5", "a number"),
    ("float", float("nan"), "a number"),
    ("float", float("inf"), "a number"),
    ("bool", 2, "a boolean"),
    ("bool", "true", "a boolean"),
    ("bool", 1.0, "a boolean"),
    ("bool", "1", "a boolean"),
    ("decimal", True, "a decimal number"),
    ("decimal", "abc", "a decimal number"),
    ("decimal", Decimal("NaN"), "a decimal number"),
    ("decimal", float("inf"), "a decimal number"),
    ("decimal", "Infinity", "a decimal number"),
    ("decimal", [1], "a decimal number"),
    ("date", DT, "a date"),  # a datetime is not a date
    ("date", "2024-02-30", "a date"),
    ("date", "yesterday", "a date"),
    ("date", 20240229, "a date"),
    ("datetime", D, "a datetime"),  # nor is a date a datetime
    ("datetime", "not a time", "a datetime"),
    ("datetime", 1700000000, "a datetime"),
    ("time", DT, "a time"),
    ("time", "25:00:00", "a time"),
    ("time", 3600, "a time"),
    ("json", float("nan"), "a JSON-serialisable value"),
    ("json", {"x": float("inf")}, "a JSON-serialisable value"),
    ("json", {1, 2}, "a JSON-serialisable value"),
    ("json", {"when": D}, "a JSON-serialisable value"),
    ("json", object(), "a JSON-serialisable value"),
]


@pytest.mark.parametrize(("kind", "value", "expected"), REJECTED)
def test_coerce_rejects_wrong_values_saying_what_was_expected(
    kind: str, value: Any, expected: str
) -> None:
    with pytest.raises(ValueError, match=f"expected {expected}"):
        coerce(spec(kind), value)


# --- options and max_length ------------------------------------------------------------------


def test_options_accept_listed_and_reject_others() -> None:
    status = spec("str", options=("Open", "Closed"))

    assert coerce(status, "Open") == "Open"
    with pytest.raises(ValueError, match="one of 'Open', 'Closed'"):
        coerce(status, "open")
    with pytest.raises(ValueError, match="a string"):
        coerce(status, 1)


def test_max_length_counts_characters() -> None:
    label = spec("str", max_length=3)

    assert coerce(label, "abc") == "abc"
    assert coerce(label, "äöü") == "äöü"
    with pytest.raises(ValueError, match="at most 3 characters"):
        coerce(label, "abcd")


# --- build_spec: required, Optional, defaults ------------------------------------------------


def test_plain_annotation_without_default_is_required() -> None:
    s = build_spec("subject", str, MISSING)

    assert (s.kind, s.nullable, s.required) == ("str", False, True)
    assert s.initial() is None


def test_optional_annotation_is_nullable_and_not_required() -> None:
    optional = typing.Optional[str]  # noqa: UP045 - the spelling under test
    union = typing.Union[None, str]  # noqa: UP007 - the spelling under test
    for annotation in (str | None, optional, union):
        s = build_spec("x", annotation, MISSING)
        assert (s.kind, s.nullable, s.required) == ("str", True, False), annotation


def test_default_makes_a_field_not_required_and_is_its_initial_value() -> None:
    s = build_spec("status", str, "Open")

    assert s.required is False
    assert s.nullable is False
    assert s.initial() == "Open"


def test_none_default_on_non_optional_is_not_required() -> None:
    assert build_spec("x", int, None).required is False


@pytest.mark.parametrize(
    ("annotation", "kind"),
    [
        (str, "str"),
        (int, "int"),
        (float, "float"),
        (bool, "bool"),
        (Decimal, "decimal"),
        (dt.date, "date"),
        (dt.datetime, "datetime"),
        (dt.time, "time"),
        (dict, "json"),
        (list, "json"),
        (dict[str, Any], "json"),
        (list[int], "json"),
        (typing.Dict[str, int], "json"),  # noqa: UP006
        (Any, "json"),
        (dict[str, Any] | None, "json"),
        (int | str, "json"),  # a union of several types can only be stored as JSON
    ],
)
def test_annotation_maps_to_kind(annotation: Any, kind: str) -> None:
    assert build_spec("x", annotation, None).kind == kind


@pytest.mark.parametrize("annotation", [bytes, set, complex, tuple[int, int], typing.Literal["a"]])
def test_unsupported_annotation_raises_type_error_naming_field(annotation: Any) -> None:
    with pytest.raises(TypeError, match="field 'weird': unsupported type"):
        build_spec("weird", annotation, MISSING)


def test_field_info_value_supplies_default_and_options() -> None:
    s = build_spec("status", str, Field("Open", options=["Open", "Closed"], index=True))

    assert s.default == "Open"
    assert s.options == ("Open", "Closed")
    assert s.index is True
    assert s.required is False


def test_field_without_default_is_still_required() -> None:
    s = build_spec("label", str, Field(max_length=20, unique=True))

    assert s.required is True
    assert (s.max_length, s.unique) == (20, True)


def test_field_link_on_optional() -> None:
    s = build_spec("parent", str | None, Field(None, link="Task"))

    assert (s.link, s.nullable, s.default, s.required) == ("Task", True, None, False)


def test_annotated_field_metadata_is_read() -> None:
    s = build_spec("code", Annotated[str, Field(max_length=5, index=True)], MISSING)

    assert (s.kind, s.max_length, s.index, s.required) == ("str", 5, True, True)


def test_annotated_field_keeps_a_plain_class_default() -> None:
    # `code: Annotated[str, Field(max_length=5)] = "abc"`: the class value is the default.
    s = build_spec("code", Annotated[str, Field(max_length=5)], "abc")

    assert s.default == "abc"
    assert s.required is False
    assert s.max_length == 5


def test_annotated_optional_with_field() -> None:
    s = build_spec("due", Annotated[dt.date | None, Field(None, index=True)], MISSING)

    assert (s.kind, s.nullable, s.index, s.default) == ("date", True, True, None)


def test_field_returns_field_info_with_options_as_tuple() -> None:
    info = Field("a", options=["a", "b"])

    assert isinstance(info, FieldInfo)
    assert info.options == ("a", "b")
    assert Field().default is MISSING


def test_mutable_default_is_copied_for_each_document() -> None:
    s = build_spec("data", dict[str, Any], {"items": [1]})

    first = s.initial()
    first["items"].append(2)

    assert s.initial() == {"items": [1]}
    assert s.default == {"items": [1]}


# --- text round trip (single doctypes) -------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("str", "x y"),
        ("int", 42),
        ("float", 2.5),
        ("bool", True),
        ("bool", False),
        ("decimal", Decimal("10.500")),
        ("date", D),
        ("datetime", DT),
        ("time", T),
        ("json", {"a": [1, None]}),
    ],
)
def test_to_text_from_text_round_trip(kind: str, value: Any) -> None:
    s = spec(kind)

    assert from_text(s, to_text(s, value)) == value
    assert to_text(s, None) is None
    assert from_text(s, None) is None


# --- the same checks when a document is saved (SQLite site) ----------------------------------


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"subject": "x", "priority": True}, "ValidationError", "Task: field 'priority' got True"),
        ({"subject": "x", "score": float("nan")}, "ValidationError", "field 'score' got nan"),
        ({"subject": "x", "due": DT}, "ValidationError", "field 'due' got datetime"),
        ({"subject": "x", "status": "Nope"}, "ValidationError", "field 'status' got 'Nope'"),
        ({"subject": "x", "data": {"x": float("nan")}}, "ValidationError", "field 'data'"),
        ({"subject": None}, "MandatoryError", "Task: field 'subject' is required"),
        ({}, "MandatoryError", "Task: field 'subject' is required"),
    ],
)
def test_invalid_values_on_insert_raise_and_write_nothing(
    sqlite_site: Any, values: dict[str, Any], error: str, message: str
) -> None:
    import jobbench

    with jobbench.site_context("s1", sqlite_site.path):
        doc = jobbench.new_doc("Task", **values)

        with pytest.raises(getattr(jobbench, error), match=message):
            doc.insert()
        assert jobbench.db.count("Task") == 0
        # The series counter was not used up either.
        assert jobbench.new_doc("Task", subject="ok").insert().name == "TASK-0001"


def test_values_are_coerced_on_insert_and_read_back_typed(sqlite_site: Any) -> None:
    import jobbench

    with jobbench.site_context("s1", sqlite_site.path):
        doc = jobbench.new_doc(
            "Task", subject="x", score=2, done=1, amount="1.25", due="2024-02-29", data={"k": [1]}
        ).insert()
        jobbench.db.commit()
        assert (doc.score, doc.done, doc.amount, doc.due) == (2.0, True, Decimal("1.25"), D)

        loaded = jobbench.get_doc("Task", doc.name)

    assert type(loaded.score) is float
    assert loaded.done is True
    assert loaded.amount == Decimal("1.25")
    assert loaded.due == D
    assert loaded.data == {"k": [1]}
    assert loaded.status == "Open"
