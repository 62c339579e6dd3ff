"""migrate: a field added to a doctype class becomes a column; rows and data are never lost."""

from __future__ import annotations

import sqlalchemy as sa

import jobbench
from jobbench.sites import install_app, migrate_site

HOOKS = 'doctypes = ["{app}.doctypes.Widget"]\n'
V1 = """
from jobbench.model import Document


class Widget(Document):
    doctype = "Widget"
    naming = "field:title"

    title: str
    legacy: str | None = None
"""
V2 = """
from decimal import Decimal
from typing import Any

from jobbench.model import Document, Field


class Widget(Document):
    doctype = "Widget"
    naming = "field:title"

    title: str
    legacy: str | None = None
    size: int | None = None
    color: str | None = Field(None, max_length=40, index=True)
    price: Decimal | None = None
    extra: dict[str, Any] | None = None
"""
V3 = V2.replace("    legacy: str | None = None\n", "")  # a field removed from the class


def table_columns(site, bench) -> set[str]:
    with jobbench.site_context(site, bench.path):
        return {c["name"] for c in sa.inspect(jobbench.db.conn).get_columns("tabWidget")}


def test_migrate_adds_columns_and_keeps_rows(site, bench, make_app, peek):
    from decimal import Decimal

    app = "wapp"
    make_app(app, hooks=HOOKS.format(app=app), doctypes=V1)
    report = install_app(bench, site, app)
    assert "tabWidget" in report.changes.created_tables
    with jobbench.site_context(site, bench.path):
        jobbench.new_doc("Widget", title="old one", legacy="kept").insert()
        jobbench.new_doc("Widget", title="old two").insert()
        jobbench.db.commit()

    make_app(app, hooks=HOOKS.format(app=app), doctypes=V2)  # new code, modules forgotten
    report = migrate_site(bench, site)
    assert {"tabWidget.size", "tabWidget.color", "tabWidget.price", "tabWidget.extra"} <= set(
        report.changes.added_columns
    )
    assert any("color" in name for name in report.changes.created_indexes)
    assert "Widget" in report.doctypes
    assert {"size", "color", "price", "extra", "legacy"} <= table_columns(site, bench)

    with jobbench.site_context(site, bench.path):
        old = jobbench.get_doc("Widget", "old one")
        assert (old.legacy, old.size, old.color, old.price, old.extra) == (
            "kept",
            None,
            None,
            None,
            None,
        )
        old.size = 3
        old.save()
        jobbench.new_doc(
            "Widget", title="new", size=7, color="red", price=Decimal("1.5"), extra={"a": 1}
        ).insert()
        jobbench.db.commit()
    fields = ["title", "legacy", "size", "color", "price", "extra"]
    rows = peek(lambda: jobbench.get_all("Widget", fields=fields, order_by="title"))
    assert rows == [
        {"title": "new", "legacy": None, "size": 7, "color": "red", "price": Decimal("1.5"),
         "extra": {"a": 1}},
        {"title": "old one", "legacy": "kept", "size": 3, "color": None, "price": None,
         "extra": None},
        {"title": "old two", "legacy": None, "size": None, "color": None, "price": None,
         "extra": None},
    ]  # fmt: skip

    again = migrate_site(bench, site)  # nothing left to do
    assert not again.changes

    make_app(app, hooks=HOOKS.format(app=app), doctypes=V3)
    migrate_site(bench, site)
    assert "legacy" in table_columns(site, bench)  # migrate never drops a column
    with jobbench.site_context(site, bench.path):
        assert jobbench.db.count("Widget") == 3
        assert jobbench.db.get_value("Widget", "old one", "size") == 3
        assert jobbench.new_doc("Widget", title="v3").insert().name == "v3"


def test_migrate_is_harmless_on_an_up_to_date_site(site, bench, peek):
    with jobbench.site_context(site, bench.path):
        jobbench.new_doc("Task", subject="survives").insert()
        settings = jobbench.get_doc("System Settings")
        settings.enable_scheduler = False
        settings.save()
        jobbench.db.commit()
    report = migrate_site(bench, site)
    assert not report.changes
    assert {"Task", "Note", "Tag", "System Settings", "Error Log"} <= set(report.doctypes)
    assert peek(lambda: jobbench.get_all("Task", pluck="subject")) == ["survives"]
    # the defaults of a new site are not written over what was saved
    assert peek(lambda: jobbench.db.get_single_value("System Settings", "enable_scheduler")) is (
        False
    )
