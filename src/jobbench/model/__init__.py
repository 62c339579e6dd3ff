"""The document layer: doctypes as typed Python classes stored with SQLAlchemy Core."""

from jobbench.model.document import Document
from jobbench.model.fields import Field

__all__ = ["Document", "Field"]
