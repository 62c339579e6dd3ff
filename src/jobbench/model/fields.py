"""Typed fields: read from a doctype class's annotations, checked and coerced on save.

A field is declared as an annotation, optionally with a default or a ``Field(...)`` carrying
options::

    subject: str                                  # required (no default, not Optional)
    status: str = Field("Open", options=["Open", "Closed"], index=True)
    due: datetime.date | None = None
    event: str | None = Field(None, link="Scheduler Event")
    data: dict | None = None                      # JSON
"""

from __future__ import annotations

import datetime as dt
import json
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, get_args, get_origin

MISSING: Any = object()
DECIMAL_DIGITS, DECIMAL_PLACES = 21, 9  # Decimal fields are NUMERIC(21, 9)

# Python annotation -> field kind. JSON covers dict/list (parametrised or not) and Any.
_KINDS: dict[Any, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    Decimal: "decimal",
    dt.date: "date",
    dt.datetime: "datetime",
    dt.time: "time",
    dict: "json",
    list: "json",
    Any: "json",
}


class FieldInfo:
    """Options for a field, made by ``Field(...)``."""

    def __init__(
        self,
        default: Any = MISSING,
        *,
        options: Sequence[str] | None = None,
        link: str | None = None,
        max_length: int | None = None,
        index: bool = False,
        unique: bool = False,
    ) -> None:
        self.default = default
        self.options = tuple(options) if options is not None else None
        self.link = link
        self.max_length = max_length
        self.index = index
        self.unique = unique


def Field(  # noqa: N802 - reads like a type in class bodies, as pydantic's Field does
    default: Any = MISSING,
    *,
    options: Sequence[str] | None = None,
    link: str | None = None,
    max_length: int | None = None,
    index: bool = False,
    unique: bool = False,
) -> Any:
    """Options for a field; put it as the annotated attribute's value.

    Typed as ``Any`` so ``status: str = Field("Open", ...)`` type-checks like a plain default."""
    return FieldInfo(
        default, options=options, link=link, max_length=max_length, index=index, unique=unique
    )


@dataclass(frozen=True)
class FieldSpec:
    """Everything the model needs to know about one field."""

    name: str
    kind: str
    nullable: bool
    default: Any = MISSING
    options: tuple[str, ...] | None = None
    link: str | None = None
    max_length: int | None = None
    index: bool = False
    unique: bool = False

    @property
    def required(self) -> bool:
        return self.default is MISSING and not self.nullable

    def initial(self) -> Any:
        """The value a new document starts with (mutable defaults are copied)."""
        if self.default is MISSING:
            return None
        if isinstance(self.default, dict | list):
            return json.loads(json.dumps(self.default))
        return self.default


def _unwrap(annotation: Any) -> tuple[Any, bool, FieldInfo | None]:
    """Strip Optional[...] and Annotated[..., Field]; return (base type, nullable, Field)."""
    extra: FieldInfo | None = None
    if get_origin(annotation) is typing.Annotated:
        base, *meta = get_args(annotation)
        extra = next((m for m in meta if isinstance(m, FieldInfo)), None)
        annotation = base
    nullable = False
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else Any
    return annotation, nullable, extra


def kind_of(annotation: Any) -> str | None:
    base = get_origin(annotation) or annotation
    return _KINDS.get(base)


def build_spec(name: str, annotation: Any, value: Any) -> FieldSpec:
    """Make a FieldSpec from one annotation and its class attribute value (or MISSING)."""
    base, nullable, extra = _unwrap(annotation)
    kind = kind_of(base)
    if kind is None:
        raise TypeError(f"field '{name}': unsupported type {base!r}")
    if isinstance(value, FieldInfo):
        extra = value
    # A plain class value is the default even when Annotated[..., Field()] gave the options.
    use_extra = extra is not None and (value is MISSING or isinstance(value, FieldInfo))
    default = extra.default if use_extra and extra is not None else value
    return FieldSpec(
        name=name,
        kind=kind,
        nullable=nullable,
        default=default,
        options=extra.options if extra else None,
        link=extra.link if extra else None,
        max_length=extra.max_length if extra else None,
        index=extra.index if extra else False,
        unique=extra.unique if extra else False,
    )


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise TypeError
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    raise TypeError


def _to_datetime(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError
    if value.tzinfo is not None:  # columns are naive: PostgreSQL would shift it, others drop it
        raise ValueError
    return value


def _to_time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        return dt.time.fromisoformat(value)
    raise TypeError


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        raise TypeError
    if not result.is_finite():
        raise ValueError
    if result.as_tuple().exponent < -DECIMAL_PLACES:  # type: ignore[operator]
        # round as the NUMERIC column of PostgreSQL and MariaDB does, so SQLite stores the same
        result = result.quantize(Decimal(1).scaleb(-DECIMAL_PLACES), rounding=ROUND_HALF_UP)
    if abs(result) >= 10 ** (DECIMAL_DIGITS - DECIMAL_PLACES):
        raise ValueError
    return result


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:  # the BIGINT column's range
            raise ValueError
        return value
    raise TypeError


def _to_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
        if not math.isfinite(result):  # NaN/inf: SQLite stores NULL, MariaDB refuses
            raise ValueError
        return result
    raise TypeError


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TypeError


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError


def _to_json(value: Any) -> Any:
    json.dumps(value, allow_nan=False)  # raises TypeError/ValueError for what JSON cannot hold
    return value


_COERCE = {
    "str": (_to_str, "a string"),
    "int": (_to_int, "an integer (64-bit)"),
    "float": (_to_float, "a number"),
    "bool": (_to_bool, "a boolean (or 0/1)"),
    "decimal": (_to_decimal, "a decimal number with at most 12 digits before the point"),
    "date": (_to_date, "a date (or ISO 'YYYY-MM-DD' string)"),
    "datetime": (_to_datetime, "a datetime (or ISO string) without a time zone"),
    "time": (_to_time, "a time (or ISO 'HH:MM:SS' string)"),
    "json": (_to_json, "a JSON-serialisable value"),
}


def coerce(spec: FieldSpec, value: Any) -> Any:
    """Return the value in the field's Python type; raise ValueError with what was expected."""
    if value is None:
        return None
    convert, expected = _COERCE[spec.kind]
    try:
        result = convert(value)
    except (TypeError, ValueError, InvalidOperation, OverflowError) as exc:
        raise ValueError(f"expected {expected}") from exc
    if spec.kind == "str" and spec.options is not None and result not in spec.options:
        raise ValueError(f"expected one of {', '.join(map(repr, spec.options))}")
    if spec.max_length is not None and isinstance(result, str) and len(result) > spec.max_length:
        raise ValueError(f"expected at most {spec.max_length} characters")
    return result


def from_text(spec: FieldSpec, text: str | None) -> Any:
    """Decode a value stored as text (single doctypes keep values as text)."""
    if text is None:
        return None
    if spec.kind == "json":
        return json.loads(text)
    if spec.kind == "bool":
        return text in ("1", "True", "true")
    if spec.kind in ("int", "float"):
        return _COERCE[spec.kind][0](int(text) if spec.kind == "int" else float(text))
    return coerce(spec, text)


def to_text(spec: FieldSpec, value: Any) -> str | None:
    if value is None:
        return None
    if spec.kind == "json":
        return json.dumps(value)
    if spec.kind == "bool":
        return "1" if value else "0"
    if spec.kind in ("date", "datetime", "time"):
        return str(value.isoformat())
    return str(value)
