"""Document: a record of a doctype, with typed fields and Frappe's controller hooks.

Insert runs ``before_insert`` -> ``validate`` -> ``before_save`` -> field checks -> naming ->
INSERT -> ``after_insert`` -> ``on_update``; update runs ``validate`` -> ``before_save`` ->
checks -> UPDATE -> ``on_update``; delete runs ``on_trash`` -> DELETE. All field checks happen
before the first write, and the INSERT runs under a savepoint, so a bad value or a duplicate
name raises ``ValidationError`` and leaves the transaction as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from jobbench.errors import (
    DoesNotExistError,
    DuplicateEntryError,
    LinkValidationError,
    MandatoryError,
    ValidationError,
)
from jobbench.model import fields as F
from jobbench.model import naming, query
from jobbench.model.meta import SINGLES, STANDARD_NAMES, DocMeta, build_meta
from jobbench.model.site import Site, current
from jobbench.utils import _dict

if TYPE_CHECKING:
    from jobbench.model.database import Database


class Document:
    """Base class of every doctype. Subclasses set ``doctype`` and annotate their fields."""

    doctype: ClassVar[str]
    naming: ClassVar[str] = "hash"
    issingle: ClassVar[bool] = False

    def __init__(self, **values: Any) -> None:
        meta = self.meta
        self.flags = _dict()
        self.name: str | None = None
        self.owner: str | None = None
        self.creation: Any = None
        self.modified: Any = None
        self.modified_by: str | None = None
        self._is_new = True
        for fname in meta.own_fields:
            setattr(self, fname, meta.fields[fname].initial())
        values.pop("doctype", None)
        self.update(values)

    # -- metadata ----------------------------------------------------------------------------
    @classmethod
    def get_meta(cls) -> DocMeta:
        meta = cls.__dict__.get("_meta")
        if meta is None:
            meta = build_meta(cls)
            cls._meta = meta  # type: ignore[attr-defined]
        return meta

    @property
    def meta(self) -> DocMeta:
        return type(self).get_meta()

    # -- dict-like access (Frappe code uses doc.get / doc.set / doc.update) -------------------
    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if self.meta.has_field(key) else None
        return default if value is None else value

    def set(self, key: str, value: Any) -> None:
        if not self.meta.has_field(key):
            raise ValidationError(f"{self.doctype} has no field '{key}'")
        setattr(self, key, value)

    def update(self, values: dict[str, Any]) -> Document:
        for key, value in values.items():
            self.set(key, value)
        return self

    def as_dict(self) -> _dict:
        data = _dict({name: getattr(self, name, None) for name in self.meta.fields})
        data["doctype"] = self.doctype
        return data

    def is_new(self) -> bool:
        return self._is_new

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.doctype}: {self.name}>"

    # -- controller hooks: override in subclasses ----------------------------------------------
    def before_insert(self) -> None: ...
    def validate(self) -> None: ...
    def before_save(self) -> None: ...
    def after_insert(self) -> None: ...
    def on_update(self) -> None: ...
    def on_trash(self) -> None: ...

    def run_method(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self, method, None)
        return fn(*args, **kwargs) if callable(fn) else None

    # -- persistence ------------------------------------------------------------------------
    def save(self, ignore_permissions: bool = False) -> Document:
        """Insert when new, else update. ``ignore_permissions`` is accepted for Frappe code."""
        if self._is_new:
            return self.insert()
        local = current()
        self.run_method("validate")
        self.run_method("before_save")
        values = self._checked_values(local.db)
        self._stamp(local, insert=False)
        values.update(modified=self.modified, modified_by=self.modified_by)
        if self.meta.issingle:
            query.write_singles(local.db, self.meta, _without_standard(values))
        else:
            stmt = sa.update(self.meta.table).where(self.meta.table.c.name == self.name)
            try:
                with local.db.atomic():  # a refused UPDATE must not abort the transaction
                    updated = local.db.execute(stmt.values(**values)).rowcount
            except IntegrityError as exc:
                raise DuplicateEntryError(
                    f"{self.doctype} {self.name!r}: a unique field repeats a value "
                    f"({_unique_values(self)})"
                ) from exc
            if updated == 0:
                raise DoesNotExistError(f"{self.doctype} {self.name!r} not found")
        self.run_method("on_update")
        return self

    def insert(
        self, ignore_permissions: bool = False, ignore_if_duplicate: bool = False
    ) -> Document:
        local = current()
        if self.meta.issingle:
            self._is_new = False
            return self.save()
        self.run_method("before_insert")
        self.run_method("validate")
        self.run_method("before_save")
        values = self._checked_values(local.db)
        self._stamp(local, insert=True)
        try:
            with local.db.atomic():
                if not self.name:
                    self.name = naming.make_name(local.db, self, local.now().date())
                self._check_name()
                row = {**values, **{k: getattr(self, k) for k in STANDARD_NAMES}}
                local.db.execute(sa.insert(self.meta.table).values(**row))
        except IntegrityError as exc:
            if ignore_if_duplicate:
                return self
            uniques = _unique_values(self)
            raise DuplicateEntryError(
                f"{self.doctype} {self.name!r} already exists"
                + (f" (or a unique field repeats a value: {uniques})" if uniques else "")
            ) from exc
        self._is_new = False
        self.run_method("after_insert")
        self.run_method("on_update")
        return self

    def delete(self) -> None:
        self.run_method("on_trash")
        table = self.meta.table
        current().db.execute(sa.delete(table).where(table.c.name == self.name))

    def reload(self) -> Document:
        fresh = load_doc(type(self), self.name or self.doctype)
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "flags"})
        return self

    def db_set(
        self, fieldname: str | dict[str, Any], value: Any = None, update_modified: bool = True
    ) -> None:
        """Write fields straight to the database, skipping hooks (but not type checks)."""
        values = fieldname if isinstance(fieldname, dict) else {fieldname: value}
        query.set_value(
            current().db, self.doctype, self.name, values, update_modified=update_modified
        )
        for key, val in values.items():  # the stored (coerced) value: "2019-01-01" → datetime
            spec = self.meta.fields.get(key)
            setattr(self, key, val if spec is None else F.coerce(spec, val))

    def set_user_and_timestamp(self) -> None:
        """Stamp owner/creation (when new) and modified/modified_by, as a save would (Frappe)."""
        self._stamp(current(), insert=self._is_new)

    # -- internals ---------------------------------------------------------------------------
    def _check_name(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise MandatoryError(f"{self.doctype}: name must be a non-empty string")
        if len(self.name) > 255:
            raise ValidationError(f"{self.doctype}: name {self.name[:40]!r}... is over 255 chars")

    def _checked_values(self, db: Database) -> dict[str, Any]:
        """Coerce every own field to its type; raise ValidationError before any write."""
        values: dict[str, Any] = {}
        for fname in self.meta.own_fields:
            spec = self.meta.fields[fname]
            raw = getattr(self, fname, None)
            if raw == "" and spec.kind != "str":
                raw = None
            try:
                value = F.coerce(spec, raw)
            except ValueError as exc:
                raise ValidationError(
                    f"{self.doctype}: field '{fname}' got {raw!r} ({type(raw).__name__}): {exc}"
                ) from None
            if value in (None, "") and spec.required:
                raise MandatoryError(f"{self.doctype}: field '{fname}' is required")
            if spec.link and value not in (None, ""):
                _check_link(db, self.doctype, fname, spec.link, value)
            values[fname] = value
            setattr(self, fname, value)
        return values

    def _stamp(self, local: Site, insert: bool) -> None:
        now = local.now()
        if insert:
            self.owner = self.owner or local.session.user
            self.creation = self.creation or now
        self.modified = now
        self.modified_by = local.session.user


def _unique_values(doc: Document) -> str:
    """``field='value'`` for each unique field, to name what a duplicate-key error was about."""
    meta = doc.meta
    return ", ".join(
        f"{f}={getattr(doc, f, None)!r}" for f in meta.own_fields if meta.fields[f].unique
    )


def _without_standard(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in values.items()
        if k in ("modified", "modified_by") or k not in STANDARD_NAMES
    }


def _check_link(db: Database, doctype: str, fname: str, target: str, value: Any) -> None:
    if not query.exists(db, target, value):
        raise LinkValidationError(
            f"{doctype}: field '{fname}' links to {target} {value!r}, which does not exist"
        )


def load_doc(cls: type[Document], name: str) -> Document:
    """Read one document from the current site's database."""
    db = current().db
    meta = cls.get_meta()
    doc = cls.__new__(cls)
    doc.flags = _dict()
    doc._is_new = False
    if meta.issingle:
        stmt = sa.select(SINGLES.c.field, SINGLES.c.value)
        result: Any = db.execute(stmt.where(SINGLES.c.doctype == meta.doctype))
        stored: dict[str, Any] = {str(row[0]): row[1] for row in result}
        for fname, spec in meta.fields.items():
            text = stored.get(fname)
            setattr(doc, fname, spec.initial() if text is None else F.from_text(spec, text))
        doc.name = meta.doctype
        return doc
    row = db.execute(sa.select(meta.table).where(meta.table.c.name == name)).first()
    if row is None:
        raise DoesNotExistError(f"{meta.doctype} {name!r} not found")
    for fname, value in row._mapping.items():
        setattr(doc, fname, value)
    return doc
