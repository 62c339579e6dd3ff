"""Whether the scheduler serves a site, and why not."""

from __future__ import annotations

from jobbench.context import SiteLocal
from jobbench.model import query


def inactive_reason(local: SiteLocal) -> str | None:
    """None when the scheduler serves the site; else the reason, for status and doctor."""
    conf = local.conf
    if conf.get("maintenance_mode"):
        return "maintenance_mode is on"
    if conf.get("pause_scheduler"):
        return "the scheduler is paused (pause_scheduler)"
    if conf.get("disable_scheduler"):
        return "disable_scheduler is set in the config"
    if not query.get_single_value(local.db, "System Settings", "enable_scheduler"):
        return "the scheduler is disabled (System Settings: enable_scheduler is off)"
    return None
