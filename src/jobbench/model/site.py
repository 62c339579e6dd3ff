"""The current site, as the model layer sees it.

``jobbench.context`` sits above the model (it builds each site's ``Database`` from the site
config and finds doctypes in the site's apps), so nothing under ``jobbench.model`` imports it.
Documents and queries still act on the current site: ``context`` registers its ``current``
and ``get_meta`` here when it is imported. No site can exist before that, so until then the
stand-ins raise what ``context.current()`` raises when no site is initialised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from jobbench.errors import SiteNotInitializedError

if TYPE_CHECKING:
    from datetime import datetime

    from jobbench.model.database import Database
    from jobbench.model.meta import DocMeta

NO_SITE = (
    "no site is initialised in this context; call jobbench.init(site) and "
    "jobbench.connect(), or use 'with jobbench.site_context(site):'"
)


class Session(Protocol):
    user: str


class Site(Protocol):
    """What the model uses of the current site (``jobbench.context.SiteLocal``)."""

    @property
    def db(self) -> Database: ...

    @property
    def session(self) -> Session: ...

    def now(self) -> datetime: ...


def _no_site() -> Site:
    raise SiteNotInitializedError(NO_SITE)


def _no_meta(doctype: str) -> DocMeta:
    raise SiteNotInitializedError(NO_SITE)


_current: Callable[[], Site] = _no_site
_get_meta: Callable[[str], DocMeta] = _no_meta


def register(current: Callable[[], Site], get_meta: Callable[[str], DocMeta]) -> None:
    """Called once by ``jobbench.context`` at import."""
    global _current, _get_meta
    _current, _get_meta = current, get_meta


def current() -> Site:
    """The current site; raises SiteNotInitializedError when there is none."""
    return _current()


def get_meta(doctype: str) -> DocMeta:
    """The meta of ``doctype`` as the current site's apps define it."""
    return _get_meta(doctype)
