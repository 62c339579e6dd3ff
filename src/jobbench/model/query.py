"""Reading and writing documents by filters: get_all, get_value, set_value, exists, count.

Filters take Frappe's shapes:

* a name: ``"TASK-0001"``;
* a dict: ``{"status": "Open", "progress": (">", 50), "name": ["in", ["a", "b"]]}``;
* a list of ``[field, op, value]`` (or ``[doctype, field, op, value]``).

Operators: ``= != <> < > <= >= like "not like" in "not in" between is`` (``is`` takes
``"set"`` or ``"not set"``). Every field name is checked against the doctype, so a typo is a
clear ValidationError and no user string ever reaches SQL as an identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from jobbench.errors import DoesNotExistError, DuplicateEntryError, ValidationError
from jobbench.model import fields as F
from jobbench.model import site
from jobbench.model.meta import SINGLES, DocMeta
from jobbench.utils import _dict

if TYPE_CHECKING:
    from jobbench.model.database import Database

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda c, v: c.is_(None) if v is None else c == v,
    "!=": lambda c, v: c.is_not(None) if v is None else sa.or_(c != v, c.is_(None)),
    "<": lambda c, v: c < v,
    ">": lambda c, v: c > v,
    "<=": lambda c, v: c <= v,
    ">=": lambda c, v: c >= v,
    "like": lambda c, v: c.like(v),
    "not like": lambda c, v: c.not_like(v),
    "in": lambda c, v: c.in_(_as_list(v)),
    "not in": lambda c, v: c.not_in(_as_list(v)),
    "between": lambda c, v: c.between(*_pair(v)),
    "is": lambda c, v: _is(c, v),
}
_OPS["<>"] = _OPS["!="]


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")]
    return list(value)


def _pair(value: Any) -> tuple[Any, Any]:
    items = list(value)
    if len(items) != 2:
        raise ValidationError(f"'between' needs two values, got {value!r}")
    return items[0], items[1]


def _is(col: Any, value: Any) -> Any:
    if value == "set":
        return col.is_not(None)
    if value == "not set":
        return col.is_(None)
    raise ValidationError(f"'is' takes 'set' or 'not set', got {value!r}")


def meta_of(doctype: str) -> DocMeta:
    return site.get_meta(doctype)


def column(meta: DocMeta, fieldname: str) -> sa.Column[Any]:
    if not meta.has_field(fieldname):
        raise ValidationError(f"{meta.doctype} has no field '{fieldname}'")
    return meta.table.c[fieldname]


def _is_op(value: Any) -> bool:
    """True for an operator in any case ("IN", "Like"), as the list form accepts."""
    return isinstance(value, str) and value.lower().strip() in _OPS


def _conditions(meta: DocMeta, filters: Any) -> list[Any]:
    if filters is None:
        return []
    if isinstance(filters, str):
        return [meta.table.c.name == filters]
    if isinstance(filters, dict):
        items: Iterable[Sequence[Any]] = [
            (k, *v) if isinstance(v, list | tuple) and v and _is_op(v[0]) else (k, "=", v)
            for k, v in filters.items()
        ]
    elif isinstance(filters, list | tuple):
        items = [f[1:] if len(f) == 4 else f for f in filters]
    else:
        raise ValidationError(f"filters must be a name, a dict or a list, got {filters!r}")
    conditions = []
    for item in items:
        if len(item) != 3:
            raise ValidationError(f"filter {list(item)!r} must be [field, operator, value]")
        fieldname, op, value = item
        op = str(op).lower().strip()
        if op not in _OPS:
            raise ValidationError(f"unknown filter operator {op!r}; use one of {sorted(_OPS)}")
        col = _comparable(meta, column(meta, fieldname))
        conditions.append(_OPS[op](col, _typed(meta.fields[fieldname], op, value)))
    return conditions


def _typed(spec: F.FieldSpec, op: str, value: Any) -> Any:
    """A filter value in the field's type where it converts (PostgreSQL will not compare a
    boolean with 0/1, Frappe code's usual check value); anything else is passed as given."""

    def one(v: Any) -> Any:
        try:
            return F.coerce(spec, v)
        except ValueError:
            return v

    if op in ("like", "not like", "is") or value is None:
        return value
    if op in ("in", "not in", "between"):
        return [one(v) for v in value] if isinstance(value, list | tuple) else value
    return one(value)


class _AsNumber(ColumnElement[Any]):
    """A decimal column in WHERE and ORDER BY. SQLite keeps decimals as exact text, which sorts
    as text ('100' < '6'); there it reads as CAST(col AS REAL), whose numeric affinity SQLite
    also applies to the (text) parameter. Other databases use the NUMERIC column as it is."""

    inherit_cache = False

    def __init__(self, col: sa.Column[Any]) -> None:
        self.col = col
        self.type = col.type

    @property
    def _from_objects(self) -> list[Any]:
        return self.col._from_objects


@compiles(_AsNumber)
def _as_number(element: _AsNumber, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.col, **kw))


@compiles(_AsNumber, "sqlite")
def _as_number_sqlite(element: _AsNumber, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.col, **kw)} AS REAL)"


def _comparable(meta: DocMeta, col: sa.Column[Any]) -> Any:
    return _AsNumber(col) if meta.fields[col.name].kind == "decimal" else col


def _order(meta: DocMeta, order_by: str | None) -> list[Any]:
    if not order_by:
        return []
    clauses = []
    for part in order_by.split(","):
        tokens = part.split()
        if (
            not tokens
            or len(tokens) > 2
            or (len(tokens) == 2 and tokens[1].lower() not in ("asc", "desc"))
        ):
            raise ValidationError(f"order_by {order_by!r} must look like 'field [asc|desc], ...'")
        col = _comparable(meta, column(meta, tokens[0].strip('`"')))
        clauses.append(col.desc() if len(tokens) == 2 and tokens[1].lower() == "desc" else col)
    return clauses


def _columns(meta: DocMeta, fields: Any) -> list[str]:
    if fields in (None, []):
        return ["name"]
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",")]
    names: list[str] = []
    for name in fields:
        names.extend(meta.fields if name == "*" else [name])
    for name in names:
        column(meta, name)
    return names


def get_all(
    db: Database,
    doctype: str,
    filters: Any = None,
    fields: Any = None,
    order_by: str | None = "creation desc",
    limit: int | None = None,
    start: int = 0,
    pluck: str | None = None,
    limit_page_length: int | None = None,
    limit_start: int | None = None,
) -> list[Any]:
    """Rows of a doctype as attribute dicts, or a list of one field's values with ``pluck``."""
    meta = meta_of(doctype)
    if meta.issingle:
        raise ValidationError(f"{doctype} is a single doctype; use get_doc('{doctype}')")
    names = [pluck] if pluck else _columns(meta, fields)
    stmt = sa.select(*(column(meta, n) for n in names)).where(*_conditions(meta, filters))
    stmt = stmt.order_by(*_order(meta, order_by))
    limit = limit if limit is not None else limit_page_length
    if limit:
        stmt = stmt.limit(int(limit))
    offset = limit_start if limit_start is not None else start
    if offset:
        stmt = stmt.offset(int(offset))
    rows = db.execute(stmt).all()
    if pluck:
        return [row[0] for row in rows]
    return [_dict(zip(names, row, strict=True)) for row in rows]


def get_value(
    db: Database,
    doctype: str,
    filters: Any = None,
    fieldname: Any = "name",
    as_dict: bool = False,
    order_by: str | None = None,
) -> Any:
    """One row's field (or tuple/dict of fields); None when nothing matches."""
    meta = meta_of(doctype)
    if meta.issingle:
        names = [fieldname] if isinstance(fieldname, str) else list(fieldname)
        values = [get_single_value(db, doctype, n) for n in names]
        return _shape(names, values, fieldname, as_dict)
    if filters is None:
        return None
    names = _columns(meta, fieldname)
    rows = get_all(db, doctype, filters=filters, fields=names, order_by=order_by, limit=1)
    if not rows:
        return None
    return _shape(names, [rows[0][n] for n in names], fieldname, as_dict)


def _shape(names: list[str], values: list[Any], fieldname: Any, as_dict: bool) -> Any:
    if as_dict:
        return _dict(zip(names, values, strict=True))
    if isinstance(fieldname, str) and fieldname != "*":
        return values[0]
    return tuple(values)


def get_single_value(db: Database, doctype: str, fieldname: str) -> Any:
    meta = meta_of(doctype)
    spec = meta.fields.get(fieldname)
    if spec is None:
        raise ValidationError(f"{doctype} has no field '{fieldname}'")
    stmt = sa.select(SINGLES.c.value).where(
        SINGLES.c.doctype == doctype, SINGLES.c.field == fieldname
    )
    row = db.execute(stmt).first()
    if row is None:
        return spec.initial()
    return F.from_text(spec, row[0])


def _checked(meta: DocMeta, values: dict[str, Any]) -> dict[str, Any]:
    checked = {}
    for fieldname, value in values.items():
        spec = meta.fields.get(fieldname)
        if spec is None or fieldname == "name":
            raise ValidationError(f"{meta.doctype}: cannot set field '{fieldname}'")
        try:
            checked[fieldname] = F.coerce(spec, value)
        except ValueError as exc:
            raise ValidationError(
                f"{meta.doctype}: field '{fieldname}' got {value!r}: {exc}"
            ) from None
        if checked[fieldname] is None and spec.required:
            raise ValidationError(f"{meta.doctype}: field '{fieldname}' is required")
    return checked


def set_value(
    db: Database,
    doctype: str,
    name: Any,
    fieldname: Any,
    value: Any = None,
    update_modified: bool = True,
) -> None:
    """Write fields straight to the database (no controller hooks), type-checked first."""
    meta = meta_of(doctype)
    values = dict(fieldname) if isinstance(fieldname, dict) else {fieldname: value}
    checked = _checked(meta, values)
    if update_modified:
        local = site.current()
        checked.setdefault("modified", local.now())
        checked.setdefault("modified_by", local.session.user)
    if meta.issingle:
        write_singles(db, meta, checked)
        return
    if name is None:
        raise ValidationError(f"set_value on {doctype} needs a name or filters")
    stmt = sa.update(meta.table).where(*_conditions(meta, name)).values(**checked)
    try:
        with db.atomic():  # a refused UPDATE must not abort the transaction (PostgreSQL)
            updated = db.execute(stmt).rowcount
    except IntegrityError as exc:
        raise DuplicateEntryError(
            f"{doctype} {name!r}: a unique field would repeat a value ({values!r})"
        ) from exc
    if updated == 0 and isinstance(name, str):
        raise DoesNotExistError(f"{doctype} {name!r} not found")


def write_singles(db: Database, meta: DocMeta, values: dict[str, Any]) -> None:
    """Upsert single-doctype values (delete + insert: portable across our three databases)."""
    if not values:
        return
    keys = list(values)
    db.execute(
        sa.delete(SINGLES).where(SINGLES.c.doctype == meta.doctype, SINGLES.c.field.in_(keys))
    )
    rows = [
        {"doctype": meta.doctype, "field": k, "value": F.to_text(meta.fields[k], values[k])}
        for k in keys
    ]
    db.execute(sa.insert(SINGLES), rows)


def exists(db: Database, doctype: str, filters: Any = None) -> str | None:
    """The name of the first matching document, or None."""
    meta = meta_of(doctype)
    if meta.issingle:
        return doctype
    if filters is None:
        return None
    stmt = sa.select(meta.table.c.name).where(*_conditions(meta, filters)).limit(1)
    row = db.execute(stmt).first()
    return None if row is None else str(row[0])


def count(db: Database, doctype: str, filters: Any = None) -> int:
    meta = meta_of(doctype)
    stmt = sa.select(sa.func.count()).select_from(meta.table).where(*_conditions(meta, filters))
    return int(db.execute(stmt).scalar_one())


def delete(db: Database, doctype: str, filters: Any = None) -> int:
    """Delete rows without hooks (like frappe.db.delete); returns how many went."""
    meta = meta_of(doctype)
    return int(db.execute(sa.delete(meta.table).where(*_conditions(meta, filters))).rowcount)
