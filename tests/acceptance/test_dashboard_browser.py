"""The dashboard in a real browser: Playwright driving the system Chromium against
``jobbench dashboard`` (a real subprocess on a free loopback port) on a temp SQLite bench with a
real ``jobbench worker``. Loads every page; sees a queued job appear; stops a running job (it
waits on a file) and sees it ``stopped``; retries a failed one; stops and resumes a Scheduled
Job Type; watches a Background Task's progress bar move (the job publishes progress in steps,
waiting on files between them). Off loopback (``create_app(require_auth=True)`` served by
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

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import jobbench
from conftest import IN_CI, write_app  # tests/conftest.py
from jobbench.bench import Bench, init_bench

from .helpers import cli_env

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP rebind.test 127.0.0.1",  # an attacker's name for loopback
]
CSP_MESSAGE = "Content Security Policy"
PASSWORD = "browser-test-password"
JOBS = """
import os
import time

import jobbench


def wait_file(path, timeout=60):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > deadline:
            raise TimeoutError(path)
        time.sleep(0.05)


def wait_for(path):
    wait_file(path)
    return "seen"


def fail_unless(path):
    if not os.path.exists(path):
        raise RuntimeError("no " + path)
    return "ok"


def steps(go, n=2):
    jobbench.publish_progress(0, "waiting")
    for i in range(n):
        wait_file(f"{go}.{i}")
        jobbench.publish_progress((i + 1) * 100 / n, f"step {i + 1}")
    return "done"
"""


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed (pip install playwright)"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    for module in ("starlette", "jinja2", "uvicorn", "python_multipart"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (the dashboard extra)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _requirements() -> None:
    reason = _missing()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason}; CI must run the browser tests (.ci/run installs chromium)")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status < 500)
    except OSError as exc:
        return getattr(exc, "code", 0) in (401, 303)


class Env:
    def __init__(self, bench: Bench, url: str, files: Path) -> None:
        self.bench, self.url, self.files = bench, url, files

    def enqueue(self, method: str, **kwargs: Any) -> Any:
        with jobbench.site_context("s1", self.bench.path) as local:
            job = jobbench.enqueue(f"tapp.dashjobs.{method}", **kwargs)
            local.db.commit()
            return job

    def status(self, job_id: str) -> str | None:
        with jobbench.site_context("s1", self.bench.path):
            return jobbench.get_job_status(job_id)  # type: ignore[no-any-return]

    def file(self, name: str) -> str:
        return str(self.files / name)


def _spawn(bench: Bench, *args: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "jobbench", "--bench", str(bench.path), *args]
    return subprocess.Popen(
        argv,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from jobbench.brokers.factory import close_brokers
    from jobbench.sites import install_app, new_site

    root = tmp_path_factory.mktemp("dash")
    bench = init_bench(root / "bench")
    write_app(bench.path / "apps", "tapp")
    (bench.path / "apps" / "tapp" / "dashjobs.py").write_text(JOBS)
    new_site(bench, "s1")
    install_app(bench, "s1", "tapp")
    bench.update_common_config({"default_site": "s1"})
    from jobbench.dashboard.auth import hash_password

    bench.update_common_config({"dashboard_password_hash": hash_password(PASSWORD)})
    files = root / "files"
    files.mkdir()
    port = free_port()
    server = _spawn(bench, "dashboard", "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(url + "/static/dashboard.css"), "the dashboard", 30)
        yield Env(Bench(bench.path), url, files)
    finally:
        _end(server)
        close_brokers()


@pytest.fixture(scope="module")
def worker(env: Env) -> Iterator[subprocess.Popen[bytes]]:
    proc = _spawn(env.bench, "worker", "--queue", "short,default,long")
    try:
        yield proc
    finally:
        _end(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """Playwright's page plus the CSP violations its console reported."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.page = context.new_page()
        self.violations: list[str] = []
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if CSP_MESSAGE in message.text:
            self.violations.append(message.text)


@pytest.fixture
def watched(browser: Any) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    watched = Page(context)
    try:
        yield watched
    finally:
        context.close()


@pytest.fixture
def page(watched: Page) -> Iterator[Any]:
    yield watched.page
    assert watched.violations == [], "the dashboard broke its own Content-Security-Policy"


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
    row.get_by_role("button", name="Stop").click()
    expect(page.locator("#flash")).to_contain_text("canceled")
    assert env.status(job.id) == "canceled"


def test_stop_a_running_job(env: Env, page: Any, worker: Any) -> None:
    from playwright.sync_api import expect

    job = env.enqueue("wait_for", path=env.file("stop-me"))
    wait_until(lambda: env.status(job.id) == "started", "the job to start")
    page.goto(f"{env.url}/job?site=s1&id={job.id}")
    expect(page.locator("#job-status")).to_have_text("started")
    page.get_by_role("button", name="Stop").click()
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
