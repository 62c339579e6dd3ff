"""The facade's document functions: new_doc, get_doc, get_all, delete_doc, log_error, call."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any

from jobbench.context import current, get_controller
from jobbench.errors import DoesNotExistError, MandatoryError, ValidationError
from jobbench.model import query
from jobbench.model.document import Document, load_doc
from jobbench.utils import call_with_accepted_kwargs, import_path


def new_doc(doctype: str, **fields: Any) -> Any:
    """A new, unsaved document of ``doctype`` with its defaults and the given fields."""
    return get_controller(doctype)(**fields)


def get_doc(
    doctype: str | dict[str, Any], name: str | dict[str, Any] | None = None, **fields: Any
) -> Any:
    """``get_doc(doctype, name)`` loads; ``get_doc({"doctype": ..., ...})`` builds a new one.

    A single doctype loads with ``get_doc("System Settings")``; ``get_doc(doctype, filters)``
    loads the first document matching a filter dict."""
    if isinstance(doctype, dict):
        values = dict(doctype)
        dt = values.pop("doctype", None)
        if not dt:
            raise MandatoryError("get_doc(dict) needs a 'doctype' key")
        return get_controller(dt)(**values, **fields)
    cls = get_controller(doctype)
    if name is None and not cls.get_meta().issingle:
        raise MandatoryError(f"get_doc('{doctype}') needs a name")
    if isinstance(name, dict):  # get_doc(doctype, {"method": ...}): the first match, as Frappe
        found = query.exists(current().db, doctype, name)
        if not found:
            raise DoesNotExistError(f"{doctype} matching {name!r} not found")
        name = found
    return load_doc(cls, name or doctype)


def get_single(doctype: str) -> Any:
    return get_doc(doctype)


def get_all(doctype: str, filters: Any = None, fields: Any = None, **kwargs: Any) -> list[Any]:
    return query.get_all(current().db, doctype, filters=filters, fields=fields, **kwargs)


get_list = get_all  # no permission layer here, so both read the same


def delete_doc(doctype: str, name: str, ignore_missing: bool = True, **_: Any) -> None:
    """Run the document's ``on_trash`` and delete it; missing is fine unless told otherwise."""
    if not query.exists(current().db, doctype, name):
        if ignore_missing:
            return
        from jobbench.errors import DoesNotExistError

        raise DoesNotExistError(f"{doctype} {name!r} not found")
    doc: Document = get_doc(doctype, name)
    doc.delete()


def log_error(
    title: str | None = None,
    message: str | None = None,
    reference_doctype: str | None = None,
    reference_name: str | None = None,
) -> Any:
    """Write an Error Log with ``message`` or the exception being handled (Frappe's order)."""
    if message is None:
        message = traceback.format_exc() if sys.exc_info()[0] else ""
    doc = new_doc(
        "Error Log",
        method=(title or _first_line(message) or "Error")[:255],
        error=message,
        reference_doctype=reference_doctype,
        reference_name=reference_name,
    )
    return doc.insert()


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def call(fn: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Resolve a dotted path (or take a callable) and call it with the kwargs it accepts."""
    if isinstance(fn, str):
        try:
            fn = import_path(fn)
        except (ImportError, AttributeError) as exc:
            raise ValidationError(f"cannot resolve '{fn}': {exc}") from exc
    if not callable(fn):
        raise ValidationError(f"{fn!r} is not callable")
    if args:
        return fn(*args, **kwargs)
    return call_with_accepted_kwargs(fn, kwargs)
