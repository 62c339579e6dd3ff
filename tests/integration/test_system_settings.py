"""The single doctype System Settings: defaults on a new site, saving, single-value reads."""

from __future__ import annotations

import pytest

import jobbench
from jobbench.errors import ValidationError
from jobbench.utils import is_time_zone


def test_a_new_site_has_the_scheduler_on_and_a_time_zone(ctx):
    settings = jobbench.get_doc("System Settings")
    assert settings.name == "System Settings"
    assert settings.enable_scheduler is True
    assert settings.time_zone and is_time_zone(settings.time_zone)
    assert jobbench.get_single("System Settings").time_zone == settings.time_zone

    assert jobbench.db.get_single_value("System Settings", "enable_scheduler") is True
    assert jobbench.db.get_value("System Settings", None, "enable_scheduler") is True
    assert jobbench.db.get_value("System Settings", "System Settings", "time_zone") == (
        settings.time_zone
    )
    assert jobbench.db.get_value(
        "System Settings", None, ["enable_scheduler", "time_zone"], as_dict=True
    ) == {"enable_scheduler": True, "time_zone": settings.time_zone}
    assert jobbench.db.exists("System Settings") == "System Settings"


def test_saving_system_settings_persists_and_updates_the_site_zone(ctx, peek):
    assert not jobbench.conf.time_zone  # so the zone comes from System Settings
    settings = jobbench.get_doc("System Settings")
    settings.enable_scheduler = False
    settings.time_zone = "Pacific/Chatham"
    settings.save()
    assert ctx.time_zone() == "Pacific/Chatham"
    jobbench.db.commit()

    def read():
        doc = jobbench.get_doc("System Settings")
        return (
            doc.enable_scheduler,
            doc.time_zone,
            jobbench.db.get_single_value("System Settings", "enable_scheduler"),
            jobbench.db.get_value("System Settings", None, "time_zone"),
            jobbench.current().time_zone(),
            doc.modified is not None,
        )

    zone = "Pacific/Chatham"
    assert peek(read) == (False, zone, False, zone, zone, True)


def test_set_value_on_a_single_doctype(ctx, peek):
    jobbench.db.set_value("System Settings", None, "enable_scheduler", 0)
    jobbench.db.set_value("System Settings", "System Settings", {"time_zone": "Asia/Tokyo"})
    jobbench.db.commit()
    assert peek(lambda: jobbench.db.get_single_value("System Settings", "enable_scheduler")) is (
        False
    )
    assert peek(lambda: jobbench.get_doc("System Settings").time_zone) == "Asia/Tokyo"
    with pytest.raises(ValidationError):
        jobbench.db.set_value("System Settings", None, "enable_scheduler", "yes")


def test_a_bad_time_zone_is_refused_and_nothing_changes(ctx, peek):
    before = jobbench.db.get_single_value("System Settings", "time_zone")
    settings = jobbench.get_doc("System Settings")
    settings.time_zone = "Mars/Olympus_Mons"
    settings.enable_scheduler = False
    with pytest.raises(ValidationError, match="Mars/Olympus_Mons"):
        settings.save()
    with pytest.raises(ValidationError):
        jobbench.db.get_value("System Settings", None, "no_such_field")
    with pytest.raises(ValidationError):
        jobbench.get_all("System Settings")
    jobbench.db.commit()
    assert peek(lambda: jobbench.db.get_single_value("System Settings", "time_zone")) == before
    assert peek(lambda: jobbench.db.get_single_value("System Settings", "enable_scheduler"))
