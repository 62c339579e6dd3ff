"""What the dashboard's browser tests share: a temp SQLite bench with an app of test jobs, the
real ``jobbench dashboard`` on a free loopback port, a real ``jobbench worker``, Playwright's
Chromium (the system one at /usr/bin/chromium), pages that record CSP violations, and where
screenshots go.

Fixtures here are module-scoped: each test module that imports them gets its own bench,
dashboard and worker (test_dashboard_browser.py and test_dashboard_pages.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import jobbench
from conftest import IN_CI, write_app  # tests/conftest.py
from jobbench.bench import Bench, init_bench
from ports import free_port

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


def boom(what="input"):
    raise ValueError("bad " + what)


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


def spawn_worker(env: Env, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = _spawn(env.bench, "worker", *args)
    try:
        yield proc
    finally:
        _end(proc)


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
