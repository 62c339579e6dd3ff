"""Every dashboard page and every action in Chromium (Playwright), at 1280 px and at a phone's
390 x 844, against the real ``jobbench dashboard`` and a real ``jobbench worker`` (4 threads) on
a temp SQLite bench holding failed, scheduled, running, finished and queued jobs, a Scheduled
Job Type and a Background Task.

* Every page, at both widths: answers 200 (the error page: 404, inside the layout), shows its
  heading, breaks no Content-Security-Policy rule, and does not make the page wider than the
  window (wide tables scroll inside their box; at 1280 px none needs to). A full-page
  screenshot of each is written to ``test-artifacts/dashboard/`` (or
  ``$JOBBENCH_DASHBOARD_SHOTS``); the run prints the folder.
* Every action, at 1280 px: search by job id and by method; the failed jobs' error groups
  filter the list; bulk retry (select all) and bulk delete; delete one job (going back from
  the confirmation first); retry all failed jobs of an error class; purge the failed jobs;
  run a scheduled job now and cancel another; execute and skip a Scheduled Job Type.
  Destructive ones go through the confirmation page.
  On the phone: the confirmation step of a bulk delete, by touch.
* Live updates: the overview's queue depth follows new jobs without a reload; paused, it
  does not; a running job's time grows on the Jobs page; hovering a time brings its relative
  time up to date.

Skipped (with the reason) when Playwright or /usr/bin/chromium is missing; failed under CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jobbench

from . import dashboard_kit as kit
from .dashboard_kit import Env, Page, spawn_worker, wait_until

# The kit's fixtures, found by pytest under these names in this module.
_requirements, browser, env = kit._requirements, kit.browser, kit.env

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("JOBBENCH_DASHBOARD_SHOTS") or ROOT / "test-artifacts" / "dashboard")
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
}


@pytest.fixture(scope="module")
def worker(env: Env) -> Iterator[subprocess.Popen[bytes]]:
    # Not the ``short`` queue: jobs put there stay queued for the live-update test.
    yield from spawn_worker(env, "--queue", "default,long", "--concurrency", "4")


@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest) -> Iterator[Path]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    yield SHOTS
    taken = len(list(SHOTS.glob("*.png")))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None and taken:
        with capture.global_and_fixture_disabled():  # past the output capture, to the terminal
            print(f"\ndashboard screenshots ({taken}): {SHOTS}")


class Jobs:
    """The jobs the pages show, made once for the module."""

    def __init__(self, env: Env) -> None:
        self.release = env.file("release-running")
        self.failed = [env.enqueue("fail_unless", path=env.file(f"absent-{i}")) for i in range(3)]
        self.boom = env.enqueue("boom")
        self.finished = env.enqueue("fail_unless", path=str(env.files), track_job=True)
        self.running = env.enqueue("wait_for", path=self.release)
        with jobbench.site_context("s1", env.bench.path) as local:
            self.later = [
                jobbench.enqueue_in(3600 * (i + 1), "tapp.dashjobs.boom") for i in range(2)
            ]
            doc = jobbench.new_doc(
                "Scheduled Job Type", method="tapp.dashjobs.boom", frequency="Hourly"
            )
            doc.insert()
            local.db.commit()
            self.job_type = doc.name
        for job in [*self.failed, self.boom]:
            wait_until(lambda j=job: env.status(j.id) == "failed", "a job to fail")
        wait_until(lambda: env.status(self.finished.id) == "finished", "a job to finish")
        wait_until(lambda: env.status(self.running.id) == "started", "a job to start")


@pytest.fixture(scope="module")
def jobs(env: Env, worker: Any) -> Iterator[Jobs]:
    made = Jobs(env)
    try:
        yield made
    finally:
        Path(made.release).write_text("")


def open_page(browser: Any, viewport: str) -> Page:
    context = browser.new_context(**VIEWPORTS[viewport])
    context.set_default_timeout(15_000)
    return Page(context)


@pytest.fixture(params=list(VIEWPORTS))
def at(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[str, Page]]:
    watched = open_page(browser, request.param)
    try:
        yield request.param, watched
    finally:
        watched.context.close()
    assert watched.violations == [], "the dashboard broke its own Content-Security-Policy"


def pages(jobs: Jobs) -> list[tuple[str, str, str, int]]:
    """(name, path, heading, status) of every page."""
    return [
        ("overview", "/", "Overview", 200),
        ("jobs", "/jobs", "Jobs", 200),
        ("jobs-failed", "/jobs?status=failed", "Jobs", 200),
        ("jobs-scheduled", "/jobs?status=scheduled", "Jobs", 200),
        ("jobs-running", "/jobs?status=started", "Jobs", 200),
        ("jobs-search", "/jobs?q=dashjobs.boom", "Jobs", 200),
        ("job", f"/job?site=s1&id={jobs.failed[0].id}", f"Job {jobs.failed[0].id}", 200),
        ("job-scheduled", f"/job?site=s1&id={jobs.later[0].id}", f"Job {jobs.later[0].id}", 200),
        ("job-types", "/scheduled", "Scheduled Job Types", 200),
        ("logs", "/logs", "Scheduled Job Logs", 200),
        ("tasks", "/tasks", "Background Tasks", 200),
        ("error", "/job?site=s1&id=nope", "404 Not Found", 404),
    ]


def fits(page: Any) -> bool:
    """The page is no wider than the window (wide tables scroll inside their own box)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def clipped(page: Any) -> list[str]:
    """The tables that need sideways scrolling to be read whole."""
    return list(
        page.evaluate(
            "[...document.querySelectorAll('.scroll')].filter(b => b.scrollWidth > "
            "b.clientWidth + 1).map(b => b.querySelector('table')?.id || '?')"
        )
    )


def test_every_page_at_desktop_and_phone_width(
    env: Env, jobs: Jobs, at: tuple[str, Page], shots: Path
) -> None:
    from playwright.sync_api import expect

    viewport, watched = at
    page = watched.page
    for name, path, heading, code in pages(jobs):
        response = page.goto(env.url + path)
        assert response is not None and response.status == code, (name, response)
        expect(page.locator("h1")).to_have_text(heading)
        page.screenshot(path=str(shots / f"{viewport}-{name}.png"), full_page=True)
        assert fits(page), f"{name} is wider than the {viewport} window"
        if viewport == "desktop":  # at 1280 px every table is read whole
            assert clipped(page) == [], name
        assert page.locator("nav").is_visible() and page.locator("footer").is_visible()
    page.goto(env.url + "/jobs?status=failed")
    row = page.locator(f'tr[data-job="{jobs.failed[0].id}"]')
    expect(row.locator(".exc-type")).to_have_text("RuntimeError")
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#question")).to_contain_text(f"Delete job {jobs.failed[0].id}")
    assert fits(page)
    page.screenshot(path=str(shots / f"{viewport}-confirm.png"), full_page=True)
    page.locator("#confirm-back").click()  # nothing deleted
    expect(page.locator("h1")).to_have_text("Jobs")
    assert env.status(jobs.failed[0].id) == "failed"


def test_search_and_error_groups(env: Env, jobs: Jobs, browser: Any) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, "desktop").page
    page.goto(env.url + "/jobs")
    page.fill("#search", jobs.boom.id)
    page.keyboard.press("Enter")
    expect(page.locator("#found-by-id")).to_be_visible()
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-job="{jobs.boom.id}"]')).to_be_visible()
    page.fill("#search", "wait_for")
    page.keyboard.press("Enter")
    expect(page.locator(f'tr[data-job="{jobs.running.id}"]')).to_be_visible()
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    page.goto(env.url + "/jobs?status=failed")
    expect(page.locator("#tabs a[data-status=failed] .count")).to_have_text("4")
    groups = page.locator("#error-groups tbody tr")
    expect(groups).to_have_count(4)  # three RuntimeErrors with their own paths, one ValueError
    page.locator("#error-groups").get_by_role("link", name="ValueError").click()
    expect(page.locator("#exc-type-filter")).to_have_text("ValueError")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-job="{jobs.boom.id}"] .exc-message')).to_have_text("bad input")
    page.context.close()


def confirm(page: Any, question: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#question")).to_contain_text(question)
    page.get_by_role("button", name="Yes, do it").click()


def test_bulk_retry_bulk_delete_delete_and_purge(env: Env, jobs: Jobs, browser: Any) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, "desktop").page
    page.goto(env.url + "/jobs?status=failed&exc_type=RuntimeError")
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    page.check("#select-all")  # dashboard.js ticks every row's box
    page.get_by_role("button", name="Retry selected").click()
    expect(page.locator("#confirm-jobs li")).to_have_count(3)
    confirm(page, "Retry 3 selected jobs?")
    expect(page.locator("#flash")).to_have_text("3 jobs queued again")
    for job in jobs.failed:  # they fail again: their files are still absent
        wait_until(lambda j=job: env.status(j.id) == "failed", "a retried job to fail again")
    page.goto(env.url + "/jobs?status=failed&exc_type=RuntimeError")
    page.check(f'tr[data-job="{jobs.failed[2].id}"] input[name=job]')
    page.get_by_role("button", name="Delete selected").click()
    confirm(page, "Delete 1 selected job?")
    expect(page.locator("#flash")).to_have_text("1 job deleted")
    assert env.status(jobs.failed[2].id) is None
    page.locator(f'tr[data-job="{jobs.failed[1].id}"]').get_by_role("button", name="Delete").click()
    confirm(page, f"Delete job {jobs.failed[1].id}")
    expect(page.locator("#flash")).to_contain_text("deleted")
    assert env.status(jobs.failed[1].id) is None
    page.get_by_role("button", name="Retry all").click()
    confirm(page, "Retry all 1 failed job of every site, error RuntimeError?")
    expect(page.locator("#flash")).to_have_text("1 job queued again")  # not the ValueError
    wait_until(lambda: env.status(jobs.failed[0].id) == "failed", "the job to fail again")
    page.goto(env.url + "/jobs?status=failed")
    page.get_by_role("button", name="Purge failed").click()
    confirm(page, "Delete every failed job of every site?")
    expect(page.locator("#flash")).to_have_text("Purged 2 failed jobs")
    expect(page.locator("#tabs a[data-status=failed] .count")).to_have_text("0")
    page.context.close()


def test_scheduled_jobs_and_job_types(env: Env, jobs: Jobs, browser: Any) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, "desktop").page
    page.goto(env.url + "/jobs?status=scheduled")
    first, second = (page.locator(f'tr[data-job="{j.id}"]') for j in jobs.later)
    expect(first.locator(".run-at time")).to_have_attribute("title", re.compile(r"in (59|60) min"))
    first.get_by_role("button", name="Run now").click()
    expect(page.locator("#flash")).to_contain_text("queued to run now")
    wait_until(lambda: env.status(jobs.later[0].id) == "failed", "the job run now")  # boom
    second.get_by_role("button", name="Cancel").click()
    confirm(page, f"Cancel job {jobs.later[1].id}")
    expect(page.locator("#flash")).to_contain_text("canceled")
    assert env.status(jobs.later[1].id) == "canceled"
    page.goto(env.url + "/scheduled")
    row = page.locator(f'tr[data-name="{jobs.job_type}"]')
    row.get_by_role("button", name="Execute now").click()
    expect(page.locator("#flash")).to_contain_text("run enqueued")
    row.get_by_role("button", name="Skip next").click()
    expect(page.locator("#flash")).to_contain_text("next run is now")
    page.context.close()


def test_phone_confirms_a_bulk_delete_by_touch(env: Env, jobs: Jobs, browser: Any) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, "phone").page
    job = env.enqueue("boom", queue="short")  # stays queued: no worker serves ``short``
    page.goto(env.url + "/jobs?status=queued&queue=short")
    page.locator(f'tr[data-job="{job.id}"] input[name=job]').tap()
    page.get_by_role("button", name="Delete selected").tap()
    expect(page.locator("#question")).to_have_text("Delete 1 selected job?")
    page.get_by_role("button", name="Yes, do it").tap()
    expect(page.locator("#flash")).to_have_text("1 job deleted")
    page.context.close()


def test_live_updates_pause_and_relative_times(env: Env, jobs: Jobs, browser: Any) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, "desktop").page
    page.goto(env.url + "/")
    depth = page.locator('tr[data-queue="short"] .depth')
    before = int(depth.inner_text())
    env.enqueue("boom", queue="short")
    expect(depth).to_have_text(str(before + 1))  # no reload: the page polls itself
    page.get_by_role("button", name="Pause updates").click()
    expect(page.locator("#live-toggle")).to_have_text("Resume updates")
    env.enqueue("boom", queue="short")
    page.wait_for_timeout(3000)  # more than a polling period
    expect(depth).to_have_text(str(before + 1))
    page.get_by_role("button", name="Resume updates").click()
    expect(depth).to_have_text(str(before + 2))
    page.goto(env.url + "/jobs?status=started")
    row = page.locator(f'tr[data-job="{jobs.running.id}"]')
    expect(row.locator(".worker")).not_to_be_empty()
    shown = row.locator(".runtime").inner_text()
    expect(row.locator(".runtime")).not_to_have_text(shown)  # the running time grows
    stamp = row.locator("time").first
    stamp.hover()
    expect(stamp).to_have_attribute("title", re.compile(r"^(\d+ (s|min) ago|just now)$"))
    page.context.close()
