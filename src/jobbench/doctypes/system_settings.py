"""System Settings: the single document of site-wide switches."""

from __future__ import annotations

from jobbench.errors import ValidationError
from jobbench.model.document import Document
from jobbench.utils import is_time_zone


class SystemSettings(Document):
    doctype = "System Settings"
    issingle = True

    enable_scheduler: bool = True  # a new site schedules without extra steps
    time_zone: str | None = None

    def validate(self) -> None:
        if self.time_zone and not is_time_zone(self.time_zone):
            raise ValidationError(
                f"System Settings: field 'time_zone' got {self.time_zone!r}: expected an IANA "
                "time zone name such as 'Europe/Berlin'"
            )

    def on_update(self) -> None:
        from jobbench.context import current

        current().reset_time_zone()
