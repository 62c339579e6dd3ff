"""The dashboard in a real browser: Playwright driving the system Chromium against
``jobbench dashboard`` (a real subprocess on a free loopback port) on a temp SQLite bench with a
real ``jobbench worker``. Loads every page; sees a queued job appear and cancels it; stops a
running job (it waits on a file; both after the confirmation page) and sees it ``stopped``;
retries a failed one; stops and resumes a Scheduled Job Type; watches a Background Task's
progress bar move (the job publishes progress in steps, waiting on files between them).
Off loopback (``create_app(require_auth=True)`` served by
uvicorn in a thread) an unauthenticated visit is sent to /login, JSON gets 401, and a POST
without the CSRF token is refused even when logged in; after logging out, a copy of the
session cookie in another browser is sent to /login. A name resolving to 127.0.0.1 (DNS
rebinding, simulated with Chromium's host resolver rules) gets 400, and a form another site
submits to the dashboard is refused as cross-origin.

Every page must load without a Content-Security-Policy violation in the console (the ``page``
fixture fails the test on one).

Skipped (with the reason) when Playwright or /usr/bin/chromium is missing; failed under CI=true.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jobbench

from . import dashboard_kit as kit
from .dashboard_kit import PASSWORD, Env, Page, answers, free_port, wait_until

# The kit's fixtures, found by pytest under these names in this module.
_requirements, browser, env, page = kit._requirements, kit.browser, kit.env, kit.page
watched, worker = kit.watched, kit.worker


# -- the tests ------------------------------------------------------------------------------------
def test_every_page_loads_and_a_queued_job_appears(env: Env, page: Any) -> None:
    from playwright.sync_api import expect

    for path, heading in [
        ("/", "Overview"),
        ("/jobs", "Jobs"),
        ("/scheduled", "Scheduled Job Types"),
        ("/logs", "Scheduled Job Logs"),
        ("/tasks", "Background Tasks"),
    ]:
        response = page.goto(env.url + path)
        assert response is not None and response.status == 200, path
        expect(page.locator("h1")).to_have_text(heading)
    assert "jobbench_queue_depth" in page.goto(env.url + "/metrics").text()
    page.goto(env.url + "/jobs?status=queued")
    job = env.enqueue("wait_for", queue="long", path=env.file("never"))
    page.reload()
    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row).to_have_attribute("data-status", "queued")
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator("#question")).to_contain_text(f"Cancel job {job.id}")
    page.get_by_role("button", name="Yes, do it").click()
    expect(page.locator("#flash")).to_contain_text("canceled")
    assert env.status(job.id) == "canceled"


def test_stop_a_running_job(env: Env, page: Any, worker: Any) -> None:
    from playwright.sync_api import expect

    job = env.enqueue("wait_for", path=env.file("stop-me"))
    wait_until(lambda: env.status(job.id) == "started", "the job to start")
    page.goto(f"{env.url}/job?site=s1&id={job.id}")
    expect(page.locator("#job-status")).to_have_text("started")
    page.get_by_role("button", name="Stop").click()
    page.get_by_role("button", name="Yes, do it").click()  # the confirmation step
    expect(page.locator("#job-status")).to_have_text("stopped", timeout=20_000)
    assert env.status(job.id) == "stopped"


def test_retry_a_failed_job(env: Env, page: Any, worker: Any) -> None:
    from playwright.sync_api import expect

    marker = env.file("now-ok")
    job = env.enqueue("fail_unless", path=marker)
    wait_until(lambda: env.status(job.id) == "failed", "the job to fail")
    page.goto(env.url + "/jobs?status=failed")
    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row).to_be_visible()
    page.goto(f"{env.url}/job?site=s1&id={job.id}")
    expect(page.locator("#traceback")).to_contain_text("RuntimeError")
    Path(marker).write_text("")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#flash")).to_contain_text("queued again")
    expect(page.locator("#job-status")).to_have_text("finished", timeout=20_000)


def test_stop_and_resume_a_scheduled_job_type(env: Env, page: Any) -> None:
    from playwright.sync_api import expect

    with jobbench.site_context("s1", env.bench.path) as local:
        doc = jobbench.new_doc(
            "Scheduled Job Type", method="tapp.dashjobs.fail_unless", frequency="Daily"
        )
        doc.insert()
        local.db.commit()
        name = doc.name
    page.goto(env.url + "/scheduled")
    row = page.locator(f'tr[data-name="{name}"]')
    expect(row).to_have_attribute("data-stopped", "0")
    row.get_by_role("button", name="Stop").click()
    expect(page.locator("#flash")).to_contain_text("stopped")
    expect(row).to_have_attribute("data-stopped", "1")
    row.get_by_role("button", name="Resume").click()
    expect(page.locator("#flash")).to_contain_text("resumed")
    expect(row).to_have_attribute("data-stopped", "0")


def test_progress_bar_moves(env: Env, page: Any, worker: Any) -> None:
    from playwright.sync_api import expect

    go = env.file("go")
    job = env.enqueue("steps", track_job=True, go=go)
    task_id = job.task_id
    assert task_id
    page.goto(env.url + "/tasks")
    row = page.locator(f'tr[data-task="{task_id}"]')
    expect(row.locator(".stage")).to_have_text("waiting", timeout=20_000)
    expect(row.locator(".pct")).to_have_text("0%")
    Path(f"{go}.0").write_text("")
    expect(row.locator(".pct")).to_have_text("50%")  # no reload: the page polls /api/tasks
    expect(row.locator(".fill")).to_have_attribute("style", "width: 50%;")
    Path(f"{go}.1").write_text("")
    expect(row.locator(".pct")).to_have_text("100%")
    expect(row.locator(".task-status")).to_have_text("Completed")


@pytest.fixture(scope="module")
def guarded(env: Env) -> Iterator[str]:
    """The same bench's dashboard with require_auth (as off loopback), served in a thread."""
    import uvicorn

    from jobbench.dashboard.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(env.bench.path, require_auth=True), host="127.0.0.1", port=port,
        log_level="warning",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url + "/login"), "the guarded dashboard")
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


def test_off_loopback_requires_login_and_csrf(env: Env, guarded: str, page: Any) -> None:
    from playwright.sync_api import expect

    release = env.file("release-guarded")
    job = env.enqueue("wait_for", queue="long", path=release)
    page.goto(guarded + "/jobs")
    assert "/login" in page.url
    assert page.request.get(guarded + "/api/tasks").status == 401
    assert page.request.get(guarded + "/metrics").status == 401
    fields = {"site": "s1", "job_id": job.id, "action": "stop"}
    same_origin = {"origin": guarded}
    assert page.request.post(guarded + "/actions/job", form=fields).status == 403  # no Origin
    assert (
        page.request.post(guarded + "/actions/job", form=fields, headers=same_origin).status == 401
    )
    page.fill('input[name="password"]', "wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-failed")).to_be_visible()
    page.fill('input[name="password"]', PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(guarded + "/jobs")  # back where the login redirect came from
    expect(page.locator("h1")).to_have_text("Jobs")
    forged = page.request.post(  # logged in, right origin, but no CSRF token
        guarded + "/actions/job", form=fields, headers=same_origin
    )
    assert forged.status == 403 and "CSRF" in forged.text()
    assert env.status(job.id) in ("queued", "started")  # a worker may have taken it; not stopped
    Path(release).write_text("")


def test_logout_ends_a_copied_session(guarded: str, browser: Any, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(guarded + "/login?next=/tasks")
    page.fill('input[name="password"]', PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Background Tasks")
    copied = page.context.cookies()
    elsewhere = browser.new_context()
    try:
        elsewhere.add_cookies(copied)
        other = elsewhere.new_page()
        other.goto(guarded + "/tasks")
        expect(other.locator("h1")).to_have_text("Background Tasks")  # the copy works...
        page.get_by_role("button", name="Log out").click()
        expect(page.locator("#flash")).to_have_text("Logged out.")
        other.goto(guarded + "/tasks")
        assert "/login" in other.url  # ...until the owner logs out
        elsewhere.add_cookies(copied)
        other.goto(guarded + "/jobs")
        assert "/login" in other.url
    finally:
        elsewhere.close()


def test_dns_rebinding_and_cross_site_forms_are_refused(env: Env, page: Any) -> None:
    port = env.url.rsplit(":", 1)[1]
    rebound = page.goto(f"http://rebind.test:{port}/jobs")
    assert rebound is not None and rebound.status == 400
    assert "does not answer to the host name" in page.locator("#error-detail").inner_text()
    job = env.enqueue("wait_for", queue="long", path=env.file("release-cross"))
    evil = "http://evil.test/"
    form = (
        f'<form id="f" method="post" action="{env.url}/actions/job">'
        f'<input name="site" value="s1"><input name="job_id" value="{job.id}">'
        '<input name="action" value="stop"><button>go</button></form>'
    )
    page.route(evil, lambda route: route.fulfill(content_type="text/html", body=form))
    page.goto(evil)
    with page.expect_navigation():
        page.click("button")
    assert "another origin" in page.locator("#error-detail").inner_text()
    assert env.status(job.id) in ("queued", "started")  # a worker may run it; not stopped
    Path(env.file("release-cross")).write_text("")


def test_csp_violations_are_noticed(env: Env, watched: Page) -> None:
    """The CSP check of the other tests can fail: an inline style is reported."""
    watched.page.goto(env.url + "/")
    watched.page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<div style=\"color: red\">x</div>')"
    )
    watched.page.wait_for_timeout(200)
    assert any("style" in v for v in watched.violations), watched.violations
