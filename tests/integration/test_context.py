"""The site context: init/connect/destroy, user, conf, hooks, two sites, threads."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import jobbench
import jobbench.hooks
from jobbench.errors import SiteNotFoundError, SiteNotInitializedError

TAPP_DOCTYPES = ["tapp.doctypes.Task", "tapp.doctypes.Note", "tapp.doctypes.Tag"]


def assert_no_site() -> None:
    for access in (
        lambda: jobbench.db.commit(),
        lambda: jobbench.db.count("Task"),
        lambda: jobbench.local.site,
        lambda: jobbench.session.user,
        lambda: jobbench.conf.db_url,
        lambda: jobbench.get_all("Task"),
        lambda: jobbench.new_doc("Task", subject="x"),
        lambda: jobbench.get_hooks("doctypes"),
    ):
        with pytest.raises(SiteNotInitializedError):
            access()


def test_without_a_site_every_site_bound_call_raises(site, bench):
    assert_no_site()
    with jobbench.site_context(site, bench.path):
        assert jobbench.db.count("Task") == 0
    assert_no_site()  # and again once the block is over


def test_init_connect_destroy(site, bench, peek):
    local = jobbench.init(site, bench.path)
    try:
        assert jobbench.local.site == site
        assert jobbench.local.bench.path == bench.path
        assert jobbench.session.user == "Guest"
        with pytest.raises(SiteNotInitializedError, match="connect"):
            jobbench.db.count("Task")
        db = jobbench.connect()
        assert db is local.db
        assert jobbench.session.user == "Administrator"
        jobbench.new_doc("Task", subject="via init").insert()
        jobbench.db.commit()
    finally:
        jobbench.destroy()
    assert_no_site()
    assert peek(lambda: jobbench.db.count("Task")) == 1


def test_destroy_rolls_back_uncommitted_work(site, bench, peek):
    jobbench.init(site, bench.path)
    try:
        jobbench.connect()
        jobbench.new_doc("Task", subject="lost").insert()
    finally:
        jobbench.destroy()
    assert peek(lambda: jobbench.db.count("Task")) == 0


def test_init_finds_bench_and_site_from_the_environment(site, bench, monkeypatch):
    monkeypatch.setenv("JOBBENCH_BENCH", str(bench.path))
    monkeypatch.setenv("JOBBENCH_SITE", site)
    try:
        jobbench.init()
        assert jobbench.local.site == site
        jobbench.connect()
        assert jobbench.db.count("Task") == 0
    finally:
        jobbench.destroy()
    try:
        jobbench.connect(site)  # connect(site) initialises too
        assert jobbench.local.site == site
        assert jobbench.session.user == "Administrator"
    finally:
        jobbench.destroy()
    with pytest.raises(SiteNotFoundError, match="nosuchsite"):
        jobbench.init("nosuchsite")
    assert_no_site()


def test_set_user_and_site_context_user(site, bench):
    with jobbench.site_context(site, bench.path) as local:
        assert jobbench.session.user == "Administrator"
        jobbench.set_user("jane@example.com")
        assert jobbench.session.user == "jane@example.com"
        assert local.session.user == "jane@example.com"
        doc = jobbench.new_doc("Note", title="by jane").insert()
        assert doc.owner == "jane@example.com"
    with jobbench.site_context(site, bench.path, user="job@example.com"):
        assert jobbench.session.user == "job@example.com"


def test_conf_merges_common_and_site_config(site, bench):
    bench.update_common_config({"x_shared": "common", "x_only_common": 1, "time_zone": "UTC"})
    bench.update_site_config(site, {"x_shared": "site", "x_only_site": [1, 2]})
    with jobbench.site_context(site, bench.path) as local:
        assert jobbench.conf.x_shared == "site"
        assert jobbench.conf["x_only_common"] == 1
        assert jobbench.conf.x_only_site == [1, 2]
        assert "x_only_site" in jobbench.conf
        assert jobbench.conf.x_missing is None
        assert jobbench.conf.installed_apps == ["tapp"]
        assert jobbench.conf.db_url
        assert local.time_zone() == "UTC"  # config wins over System Settings
    bench.update_site_config(site, {"time_zone": "Asia/Kolkata"})
    with jobbench.site_context(site, bench.path) as local:
        assert local.time_zone() == "Asia/Kolkata"


def test_get_hooks_merges_apps_in_order(site, bench, make_app):
    from jobbench.sites import install_app

    make_app(
        "happ",
        hooks="""
        doctypes = ["happ.doctypes.Thing"]
        scheduler_events = {"daily": ["happ.tasks.daily"]}
        before_job = "happ.tasks.before"
        """,
        doctypes="""
        from jobbench.model import Document

        class Thing(Document):
            doctype = "Thing"
            label: str | None = None
        """,
    )
    install_app(bench, site, "happ")
    with jobbench.site_context(site, bench.path):
        assert jobbench.get_hooks("doctypes") == [
            *jobbench.hooks.doctypes,
            *TAPP_DOCTYPES,
            "happ.doctypes.Thing",
        ]
        assert jobbench.get_hooks("before_job") == ["happ.tasks.before"]
        assert jobbench.get_hooks("scheduler_events")["daily"][-1] == "happ.tasks.daily"
        assert jobbench.get_hooks("no_such_hook") == []
        assert jobbench.get_hooks("no_such_hook", {}) == {}
        assert "doctypes" in jobbench.get_hooks()
        assert jobbench.local.apps == ["jobbench", "tapp", "happ"]
        assert jobbench.new_doc("Thing", label="t").insert().label == "t"


def test_two_sites_one_after_the_other_and_nested(site, site2, bench):
    bench.update_site_config(site, {"x_name": "one"})
    bench.update_site_config(site2, {"x_name": "two"})

    with jobbench.site_context(site, bench.path) as one:
        jobbench.set_user("one@example.com")
        jobbench.new_doc("Note", title="only in one").insert()
        with jobbench.site_context(site2, bench.path) as two:
            assert jobbench.local.site == site2
            assert jobbench.current() is two
            assert jobbench.session.user == "Administrator"
            assert jobbench.conf.x_name == "two"
            assert jobbench.conf.db_url != one.conf.db_url
            assert two.db is not one.db and two.db.db_url != one.db.db_url
            assert jobbench.db.count("Note") == 0
            jobbench.new_doc("Note", title="only in two").insert()
            jobbench.db.commit()
        assert jobbench.local.site == site
        assert jobbench.current() is one
        assert jobbench.session.user == "one@example.com"
        assert jobbench.conf.x_name == "one"
        assert jobbench.get_all("Note", pluck="name") == ["only in one"]
        jobbench.db.commit()

    with jobbench.site_context(site2, bench.path):
        assert jobbench.get_all("Note", pluck="name") == ["only in two"]
        assert jobbench.session.user == "Administrator"
    with jobbench.site_context(site, bench.path):
        assert jobbench.get_all("Note", pluck="name") == ["only in one"]
        assert jobbench.conf.x_name == "one"
    assert_no_site()


def test_the_context_is_per_thread(site, bench):
    barrier = threading.Barrier(2, timeout=20)
    seen: dict[str, Any] = {}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            try:
                seen["thread site"] = jobbench.local.site
            except SiteNotInitializedError:
                seen["thread starts without a site"] = True
            with jobbench.site_context(site, bench.path, user="thread@example.com"):
                barrier.wait()  # 1: both threads are inside a context
                jobbench.set_user("thread2@example.com")
                barrier.wait()  # 2: the main thread checks its own user
                barrier.wait()  # 3: the main thread changed its user
                seen["thread user"] = jobbench.session.user
                seen["thread sees"] = jobbench.get_all("Note", pluck="name")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            barrier.abort()

    with jobbench.site_context(site, bench.path, user="main@example.com"):
        jobbench.new_doc("Note", title="uncommitted in main").insert()
        thread = threading.Thread(target=worker)
        thread.start()
        try:
            barrier.wait()
            barrier.wait()
            assert jobbench.session.user == "main@example.com"
            jobbench.set_user("main2@example.com")
            barrier.wait()
        finally:
            thread.join(30)
        assert jobbench.session.user == "main2@example.com"
        assert jobbench.get_all("Note", pluck="name") == ["uncommitted in main"]
    assert not errors, errors
    assert seen == {
        "thread starts without a site": True,
        "thread user": "thread2@example.com",
        "thread sees": [],
    }
