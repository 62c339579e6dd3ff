"""DocMeta: what a doctype class declares, and the SQL table that stores it.

Built once per class, lazily (annotations may refer to names defined later in the module).
One table per doctype, named ``tab<DocType>`` as in Frappe; single doctypes keep their values
as rows of ``tabSingles``. Every column but ``name`` is nullable: required fields are enforced
in Python, so ``migrate`` can always add a column to a table that already has rows.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from jobbench.model.fields import MISSING, FieldSpec, build_spec

if TYPE_CHECKING:
    from jobbench.model.document import Document

NAME_LENGTH = 255
STANDARD_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("name", "str", nullable=False, max_length=NAME_LENGTH),
    FieldSpec("owner", "str", nullable=True, max_length=NAME_LENGTH),
    FieldSpec("creation", "datetime", nullable=True, index=True),
    FieldSpec("modified", "datetime", nullable=True, index=True),
    FieldSpec("modified_by", "str", nullable=True, max_length=NAME_LENGTH),
)
STANDARD_NAMES = frozenset(f.name for f in STANDARD_FIELDS)
_RESERVED = STANDARD_NAMES | {"doctype", "naming", "issingle", "flags", "meta"}

_metadata = sa.MetaData()

# Single doctypes and naming series keep their state in these two shared tables.
SINGLES = sa.Table(
    "tabSingles",
    _metadata,
    sa.Column("doctype", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("field", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("value", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")),
)
SERIES = sa.Table(
    "tabSeries",
    _metadata,
    sa.Column("name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("current", sa.BigInteger, nullable=False, server_default="0"),
)
INTERNAL_TABLES = (SINGLES, SERIES)


class DecimalType(sa.types.TypeDecorator[Any]):
    """NUMERIC(21, 9) on servers; text on SQLite, whose NUMERIC is a float and loses digits."""

    impl = sa.Numeric(21, 9, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(64))
        return dialect.type_descriptor(sa.Numeric(21, 9, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is not None and dialect.name == "sqlite":
            return str(value)
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        from decimal import Decimal

        return None if value is None else Decimal(str(value))


def _long_text() -> sa.types.TypeEngine[Any]:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def column_type(spec: FieldSpec) -> sa.types.TypeEngine[Any]:
    if spec.kind == "str":
        if spec.max_length or spec.link or spec.index or spec.unique or spec.options:
            return sa.String(spec.max_length or NAME_LENGTH)
        return _long_text()
    if spec.kind == "datetime":
        return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    if spec.kind == "time":
        return sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb")
    simple: dict[str, sa.types.TypeEngine[Any]] = {
        "int": sa.BigInteger(),
        "float": sa.Float(precision=53),
        "bool": sa.Boolean(create_constraint=False),
        "decimal": DecimalType(),
        "date": sa.Date(),
        "json": sa.JSON(),
    }
    return simple[spec.kind]


@dataclass
class DocMeta:
    """The doctype's name, fields (standard ones first), naming rule and storage."""

    doctype: str
    cls: type[Document]
    fields: dict[str, FieldSpec]
    naming: str = "hash"
    issingle: bool = False
    own_fields: tuple[str, ...] = field(default_factory=tuple)

    @property
    def table_name(self) -> str:
        return f"tab{self.doctype}"

    @cached_property
    def table(self) -> sa.Table:
        columns = [
            sa.Column(
                spec.name,
                column_type(spec),
                primary_key=spec.name == "name",
                nullable=spec.name != "name",
                index=spec.index or spec.unique,
                unique=spec.unique,
            )
            for spec in self.fields.values()
        ]
        return sa.Table(self.table_name, sa.MetaData(), *columns)

    def has_field(self, name: str) -> bool:
        return name in self.fields


def build_meta(cls: type[Document]) -> DocMeta:
    """Read the class's annotated fields (from Document subclasses only) into a DocMeta."""
    from jobbench.model.document import Document

    doctype = cls.__dict__.get("doctype") or getattr(cls, "doctype", None)
    if not isinstance(doctype, str) or not doctype.strip():
        raise TypeError(f"{cls.__qualname__} must set doctype = 'Name' to be a doctype")
    hints = typing.get_type_hints(cls, include_extras=True)
    own: list[str] = []
    for klass in reversed(cls.__mro__):
        if isinstance(klass, type) and issubclass(klass, Document) and klass is not Document:
            for fname in klass.__dict__.get("__annotations__", {}):
                if fname in own or fname.startswith("_"):
                    continue
                if typing.get_origin(hints.get(fname)) is typing.ClassVar:
                    continue
                # A field named like a Document method would hide it on every instance.
                if fname in _RESERVED or callable(getattr(Document, fname, None)):
                    raise TypeError(f"{doctype}: field name '{fname}' is reserved")
                own.append(fname)
    specs = {f.name: f for f in STANDARD_FIELDS}
    for fname in own:
        specs[fname] = build_spec(fname, hints[fname], getattr(cls, fname, MISSING))
    return DocMeta(
        doctype=doctype,
        cls=cls,
        fields=specs,
        naming=str(getattr(cls, "naming", "hash") or "hash"),
        issingle=bool(getattr(cls, "issingle", False)),
        own_fields=tuple(own),
    )
