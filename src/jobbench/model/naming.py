"""Naming rules for new documents, as in Frappe.

* ``hash``: 10 random hex characters.
* ``field:x``: the value of field ``x``.
* a series such as ``TASK-.####`` or ``INV-.YYYY.-.#####``: dot-separated parts; a run of ``#``
  is a counter (zero-padded to its width), ``YYYY``/``YY``/``MM``/``DD`` are today's date,
  anything else is literal. The counter is keyed by everything before it and lives in
  ``tabSeries``; it is incremented inside the caller's transaction, so a rollback gives the
  number back and two transactions never get the same one.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from jobbench.errors import MandatoryError, ValidationError
from jobbench.model.meta import SERIES

if TYPE_CHECKING:
    from jobbench.model.database import Database
    from jobbench.model.document import Document


def make_hash(length: int = 10) -> str:
    return secrets.token_hex(length // 2 + 1)[:length]


def is_series(rule: str) -> bool:
    return "#" in rule


def parse_series(rule: str, today: date) -> tuple[str, int, str]:
    """Split a series rule into (prefix, counter width, suffix) for today's date."""
    prefix: list[str] = []
    suffix: list[str] = []
    width = 0
    dates = {"YYYY": f"{today:%Y}", "YY": f"{today:%y}", "MM": f"{today:%m}", "DD": f"{today:%d}"}
    for part in rule.split("."):
        if part and set(part) == {"#"}:
            if width:
                raise ValueError(f"naming series {rule!r} has more than one counter")
            width = len(part)
            continue
        (suffix if width else prefix).append(dates.get(part, part))
    if not width:
        raise ValueError(f"naming series {rule!r} has no counter (####)")
    return "".join(prefix), width, "".join(suffix)


def next_series_value(db: Database, key: str) -> int:
    """Increment and return the counter for ``key`` (row-locked by the UPDATE)."""
    stmt = sa.update(SERIES).where(SERIES.c.name == key).values(current=SERIES.c.current + 1)
    if db.execute(stmt).rowcount == 0:
        try:
            with db.atomic():
                db.execute(sa.insert(SERIES).values(name=key, current=1))
            return 1
        except IntegrityError:
            db.execute(stmt)  # another transaction created the row first; now it exists
    value = db.execute(sa.select(SERIES.c.current).where(SERIES.c.name == key)).scalar_one()
    return int(value)


def make_name(db: Database, doc: Document, today: date) -> str:
    """Return the name the doctype's rule gives this new document.

    A controller may instead define ``autoname(self) -> str`` (naming = "autoname")."""
    rule = doc.meta.naming
    if rule == "autoname":
        return str(doc.autoname())  # type: ignore[attr-defined]
    if rule == "hash":
        return make_hash()
    if rule.startswith("field:"):
        fieldname = rule.split(":", 1)[1].strip()
        value = getattr(doc, fieldname, None)
        if value in (None, ""):
            raise MandatoryError(
                f"{doc.doctype}: field '{fieldname}' is required because it names the document"
            )
        return str(value).strip()
    if is_series(rule):
        try:
            prefix, width, suffix = parse_series(rule, today)
        except ValueError as exc:
            raise ValidationError(f"{doc.doctype}: {exc}") from None
        return f"{prefix}{next_series_value(db, prefix):0{width}d}{suffix}"
    if rule == "prompt":
        raise MandatoryError(f"{doc.doctype}: set doc.name before saving (naming is 'prompt')")
    raise ValidationError(f"{doc.doctype}: unknown naming rule {rule!r}")
