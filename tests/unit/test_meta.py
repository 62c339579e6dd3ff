"""DocMeta built from Document subclasses: fields, naming, reserved names, inheritance."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from jobbench.model import Document, Field
from jobbench.model.meta import STANDARD_NAMES, build_meta


class Sample(Document):
    doctype = "Sample"
    naming = "SMP-.###"

    subject: str
    status: str = Field("Open", options=["Open", "Closed"], index=True)
    count: int = 0
    due: dt.date | None = None
    data: dict[str, Any] | None = None
    ref: str | None = Field(None, link="Sample")
    code: str = Field(max_length=8, unique=True)
    registry: ClassVar[list[str]] = []
    _private: int = 0

    def do_something(self) -> None: ...


def test_build_meta_reads_fields_in_declaration_order_after_standard_ones() -> None:
    meta = build_meta(Sample)

    assert meta.doctype == "Sample"
    assert meta.naming == "SMP-.###"
    assert meta.issingle is False
    assert meta.own_fields == ("subject", "status", "count", "due", "data", "ref", "code")
    assert list(meta.fields)[:5] == ["name", "owner", "creation", "modified", "modified_by"]
    assert list(meta.fields)[5:] == list(meta.own_fields)
    assert meta.table_name == "tabSample"


def test_build_meta_field_specs() -> None:
    f = build_meta(Sample).fields

    assert f["subject"].required is True
    assert (f["status"].default, f["status"].options, f["status"].index) == (
        "Open",
        ("Open", "Closed"),
        True,
    )
    assert (f["count"].kind, f["count"].default, f["count"].required) == ("int", 0, False)
    assert (f["due"].kind, f["due"].nullable) == ("date", True)
    assert f["data"].kind == "json"
    assert f["ref"].link == "Sample"
    assert (f["code"].max_length, f["code"].unique, f["code"].required) == (8, True, True)


def test_class_vars_private_names_and_methods_are_not_fields() -> None:
    meta = build_meta(Sample)

    for name in ("registry", "_private", "do_something", "doctype", "naming"):
        assert not meta.has_field(name), name


def test_table_columns_match_fields() -> None:
    table = build_meta(Sample).table

    assert [c.name for c in table.columns] == list(build_meta(Sample).fields)
    assert table.c.name.primary_key
    assert all(c.nullable for c in table.columns if c.name != "name")
    assert table.c.code.unique
    assert isinstance(table.c.code.type, sa.String) and table.c.code.type.length == 8
    assert table.c.status.index


def test_document_new_instance_gets_defaults() -> None:
    doc = Sample(subject="s")

    assert (doc.subject, doc.status, doc.count, doc.due, doc.name) == ("s", "Open", 0, None, None)
    assert doc.is_new()
    assert doc.as_dict()["doctype"] == "Sample"


def test_document_set_unknown_field_is_validation_error() -> None:
    from jobbench.errors import ValidationError

    with pytest.raises(ValidationError, match="Sample has no field 'nope'"):
        Sample(subject="s", nope=1)


def test_missing_doctype_raises_type_error() -> None:
    class NoDoctype(Document):
        x: int = 0

    with pytest.raises(TypeError, match="NoDoctype must set doctype"):
        build_meta(NoDoctype)


def test_blank_doctype_raises_type_error() -> None:
    class Blank(Document):
        doctype = "  "

    with pytest.raises(TypeError, match="must set doctype"):
        build_meta(Blank)


@pytest.mark.parametrize(
    "reserved", sorted(STANDARD_NAMES | {"flags", "meta", "doctype", "naming", "issingle"})
)
def test_reserved_field_names_raise_type_error(reserved: str) -> None:
    namespace: dict[str, Any] = {"doctype": "Bad", "__annotations__": {reserved: "str | None"}}
    bad = type("Bad", (Document,), namespace)

    with pytest.raises(TypeError, match=f"Bad: field name '{reserved}' is reserved"):
        build_meta(bad)


@pytest.mark.parametrize("method", ["save", "insert", "get", "set", "update", "delete", "reload"])
def test_field_shadowing_a_document_method_is_reserved(method: str) -> None:
    # A field named like a Document method would replace the method on every instance.
    namespace: dict[str, Any] = {"doctype": "Shadow", "__annotations__": {method: "str | None"}}
    bad = type("Shadow", (Document,), namespace)

    with pytest.raises(TypeError, match=f"field name '{method}' is reserved"):
        build_meta(bad)


def test_unsupported_field_type_raises_type_error() -> None:
    class Weird(Document):
        doctype = "Weird"
        blob: bytes | None = None

    with pytest.raises(TypeError, match="field 'blob': unsupported type"):
        build_meta(Weird)


def test_subclass_inherits_and_overrides_fields() -> None:
    class Base(Document):
        doctype = "Base"
        a: str = "base"
        b: int = 1

    class Child(Base):
        doctype = "Child"
        naming = "hash"
        a: str = "child"
        c: bool = False

    meta = build_meta(Child)

    assert meta.doctype == "Child"
    assert meta.own_fields == ("a", "b", "c")
    assert meta.fields["a"].default == "child"
    assert build_meta(Base).own_fields == ("a", "b")


def test_single_doctype_flag_and_default_naming() -> None:
    class Settings(Document):
        doctype = "Some Settings"
        issingle = True
        enabled: bool = True

    meta = build_meta(Settings)

    assert meta.issingle is True
    assert meta.naming == "hash"
    assert meta.table_name == "tabSome Settings"


def test_get_meta_is_cached_per_class() -> None:
    assert Sample.get_meta() is Sample.get_meta()
    assert Sample(subject="x").meta is Sample.get_meta()
