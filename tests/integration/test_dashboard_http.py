"""The dashboard over HTTP (Starlette's TestClient, a temp SQLite bench): every page renders,
jobs filter and page, actions go through the public API, every POST needs the session's CSRF
token, and with ``require_auth`` nothing but /login and /static is served without a login
(password hash, token at the form, or ``Authorization: Bearer``). Also mounted under a prefix.

The clients here act like a browser on the loopback dashboard: Host ``localhost`` and an Origin
header on every request (tests/integration/test_dashboard_security.py covers the refusals).
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
pytest.importorskip("python_multipart")

import jobbench  # noqa: E402
from jobbench.bench import Bench, init_bench  # noqa: E402
from jobbench.brokers.factory import close_brokers  # noqa: E402
from jobbench.dashboard.app import create_app  # noqa: E402
from jobbench.dashboard.auth import Signer, hash_password, is_loopback, verify_password  # noqa: E402
from jobbench.sites import new_site  # noqa: E402

warnings.filterwarnings("ignore", message=".*httpx2.*")
from starlette.testclient import TestClient  # noqa: E402

PASSWORD = "correct horse battery"
TOKEN = "tok-" + "x" * 28
ORIGIN = "http://localhost"
POST_ROUTES = [
    "/actions/job",
    "/actions/purge-failed",
    "/actions/job-type",
    "/actions/bulk",
    "/actions/retry-failed",
    "/logout",
]


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    bench = init_bench(tmp_path / "bench")
    new_site(bench, "s1")
    new_site(bench, "s2")
    bench.update_common_config(
        {
            "dashboard_password_hash": hash_password(PASSWORD, iterations=1000),
            "allowed_job_modules": ["os", "json"],
        }
    )
    yield Bench(bench.path)
    close_brokers()


def as_browser(app: Any) -> TestClient:
    """A client that sends what a browser on http://localhost sends: that Host, that Origin."""
    return TestClient(app, base_url=ORIGIN, headers={"origin": ORIGIN})


@pytest.fixture
def client(bench: Bench) -> TestClient:
    return as_browser(create_app(bench.path))


def enqueue(bench: Bench, site: str, method: str = "os.getcwd", **kw: Any) -> str:
    with jobbench.site_context(site, bench.path) as local:
        job = jobbench.enqueue(method, **kw)
        local.db.commit()
        return str(job.id)


def csrf(client: TestClient, path: str = "/") -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text)
    assert found, "no CSRF token in the page"
    return found.group(1)


def post(client: TestClient, path: str, **fields: str) -> Any:
    return client.post(path, data=fields, follow_redirects=False)


def job_status(bench: Bench, site: str, job_id: str) -> str | None:
    with jobbench.site_context(site, bench.path):
        return jobbench.get_job_status(job_id)  # type: ignore[no-any-return]


def test_every_page_renders(client: TestClient, bench: Bench) -> None:
    job_id = enqueue(bench, "s1", kwargs_note="x")
    for path in ["/", "/jobs", "/jobs?status=queued", "/scheduled", "/logs", "/tasks"]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert "<nav>" in response.text
    detail = client.get(f"/job?site=s1&id={job_id}")
    assert detail.status_code == 200 and "kwargs_note" in detail.text
    assert client.get("/job?site=s1&id=nope").status_code == 404
    assert client.get("/jobs?status=bogus").status_code == 400
    assert client.get("/api/tasks").json() == []
    assert client.get(f"/api/job?site=s1&id={job_id}").json()["status"] == "queued"
    metrics = client.get("/metrics")
    assert 'jobbench_queue_depth{queue="default"} 1' in metrics.text


def test_jobs_filter_by_site_queue_method_and_page(client: TestClient, bench: Bench) -> None:
    a = [enqueue(bench, "s1") for _ in range(3)]
    b = enqueue(bench, "s2", queue="long")
    c = enqueue(bench, "s1", method="os.getpid")
    ids = lambda text: re.findall(r'<tr data-job="([^"]+)"', text)  # noqa: E731
    assert set(ids(client.get("/jobs").text)) == {*a, b, c}
    assert ids(client.get("/jobs?site=s2").text) == [b]
    assert ids(client.get("/jobs?queue=long").text) == [b]
    assert ids(client.get("/jobs?method=os.getpid").text) == [c]
    assert set(ids(client.get("/jobs?site=s1&method=os.getcwd").text)) == set(a)
    first = client.get("/jobs?per_page=2&page=1")
    assert 'rel="next"' in first.text
    many = [enqueue(bench, "s1") for _ in range(50)]
    page2 = client.get("/jobs?page=2")
    assert len(ids(page2.text)) == len(many) + 5 - 50 and 'rel="prev"' in page2.text


def test_post_without_csrf_is_refused_everywhere(client: TestClient, bench: Bench) -> None:
    job_id = enqueue(bench, "s1")
    for path in POST_ROUTES:
        response = post(client, path, site="s1", job_id=job_id, action="stop")
        assert response.status_code == 403, path
    other = as_browser(create_app(bench.path))
    forged = post(client, "/actions/job", site="s1", job_id=job_id, action="stop",
                  csrf_token=csrf(other))  # fmt: skip
    assert forged.status_code == 403
    assert job_status(bench, "s1", job_id) == "queued"


def test_job_actions(client: TestClient, bench: Bench) -> None:
    token = csrf(client)
    job_id = enqueue(bench, "s1")
    stop = post(client, "/actions/job", site="s1", job_id=job_id, action="stop",
                csrf_token=token, next="/jobs", confirmed="1")  # fmt: skip
    assert stop.status_code == 303 and stop.headers["location"] == "/jobs"
    assert job_status(bench, "s1", job_id) == "canceled"
    shown = client.get("/jobs").text  # the banner, once
    assert re.search(r'<p class="flash ok" id="flash">Job [^<]+: canceled</p>', shown)
    assert 'id="flash"' not in client.get("/jobs").text
    post(client, "/actions/job", site="s1", job_id=job_id, action="retry", csrf_token=token)
    assert job_status(bench, "s1", job_id) == "queued"
    post(client, "/actions/job", site="s1", job_id=job_id, action="delete", csrf_token=token,
         confirmed="1")  # fmt: skip
    assert job_status(bench, "s1", job_id) is None
    missing = post(client, "/actions/job", site="s1", job_id="nope", action="stop",
                   csrf_token=token, confirmed="1")  # fmt: skip
    assert missing.headers["location"] == "/"
    assert '<p class="flash bad" id="flash">' in client.get("/").text


def test_purge_failed(client: TestClient, bench: Bench) -> None:
    failing = enqueue(bench, "s1", method="json.loads", s="{not json")
    kept = enqueue(bench, "s2", method="json.loads", s="[")
    subprocess.run(
        [sys.executable, "-m", "jobbench", "--bench", str(bench.path), "worker", "--burst"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert job_status(bench, "s1", failing) == "failed"
    failed_page = client.get("/jobs?status=failed")
    assert failing in failed_page.text and "Traceback" not in failed_page.text
    assert "JSONDecodeError" in client.get(f"/job?site=s1&id={failing}").text
    done = post(client, "/actions/purge-failed", site="s1", csrf_token=csrf(client), confirmed="1")
    assert done.status_code == 303 and "Purged 1 failed job<" in client.get("/").text
    assert job_status(bench, "s1", failing) is None
    assert job_status(bench, "s2", kept) == "failed"


def test_scheduled_job_type_actions(client: TestClient, bench: Bench) -> None:
    with jobbench.site_context("s1", bench.path) as local:
        doc = jobbench.new_doc("Scheduled Job Type", method="os.getcwd", frequency="Hourly")
        doc.insert()
        local.db.commit()
        name, first_next = doc.name, doc.next_execution
    token = csrf(client)
    assert name in client.get("/scheduled").text

    def act(action: str) -> Any:
        return post(client, "/actions/job-type", site="s1", name=name, action=action,
                    csrf_token=token, next="/scheduled")  # fmt: skip

    def read() -> Any:
        with jobbench.site_context("s1", bench.path):
            return jobbench.get_doc("Scheduled Job Type", name)

    act("stop")
    assert read().stopped
    assert 'data-stopped="1"' in client.get("/scheduled").text
    act("resume")
    assert not read().stopped
    act("skip")
    assert read().next_execution > first_next
    act("execute")
    assert (
        client.get("/jobs?method=jobbench.scheduler.run.run_scheduled_job").text.count(
            "<tr data-job="
        )
        == 1
    )


def test_require_auth_serves_nothing_without_login(bench: Bench) -> None:
    client = as_browser(create_app(bench.path, require_auth=True))
    for path in ["/", "/jobs", "/job?site=s1&id=x", "/scheduled", "/logs", "/tasks",
                 "/api/tasks", "/metrics"]:  # fmt: skip
        assert client.get(path).status_code == 401, path
        browser = client.get(path, headers={"accept": "text/html"}, follow_redirects=False)
        assert browser.status_code == 303 and browser.headers["location"].startswith("/login")
    for path in POST_ROUTES:
        assert post(client, path).status_code == 401
    assert client.get("/login").status_code == 200
    assert client.get("/static/dashboard.css").status_code == 200


def test_login_with_password_then_logout(bench: Bench) -> None:
    client = as_browser(create_app(bench.path, require_auth=True))
    token = csrf(client, "/login")
    assert post(client, "/login", password=PASSWORD).status_code == 403  # no CSRF token
    assert post(client, "/login", password="wrong", csrf_token=token).status_code == 401
    ok = post(client, "/login", password=PASSWORD, csrf_token=token, next="/jobs")
    assert ok.status_code == 303 and ok.headers["location"].startswith("/jobs")
    assert client.get("/").status_code == 200
    assert client.get("/metrics").status_code == 200
    job_id = enqueue(bench, "s1")
    assert post(client, "/actions/job", site="s1", job_id=job_id, action="stop").status_code == 403
    post(client, "/logout", csrf_token=csrf(client))
    assert client.get("/").status_code == 401


def test_token_login_and_bearer(bench: Bench) -> None:
    bench.update_common_config({"dashboard_token": TOKEN})
    client = as_browser(create_app(bench.path, require_auth=True))
    assert client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/metrics", headers={"authorization": "Bearer nope"}).status_code == 401
    token = csrf(client, "/login")
    assert post(client, "/login", password=TOKEN, csrf_token=token).status_code == 303
    assert client.get("/tasks").status_code == 200


def test_tampered_session_cookie_is_not_a_login(bench: Bench) -> None:
    app = create_app(bench.path, require_auth=True)
    binding = app.state.dashboard.binding()
    forged = Signer("not-the-secret-" + "x" * 32)
    cookie = forged.dump(forged.new_session("admin"), binding)
    client = as_browser(app)
    client.cookies.set("jobbench_session", cookie)
    assert client.get("/").status_code == 401
    real = Signer(str(bench.common_config().secret_key))
    client = as_browser(app)
    client.cookies.set("jobbench_session", real.dump(real.new_session("admin"), binding))
    assert client.get("/").status_code == 200
    unbound = as_browser(app)  # right key, but not bound to these credentials and logout epoch
    unbound.cookies.set("jobbench_session", real.dump(real.new_session("admin")))
    assert unbound.get("/").status_code == 401


def test_mounted_under_a_prefix(bench: Bench) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/admin/jobs", create_app(bench.path, require_auth=True))])
    client = as_browser(outer)
    redirect = client.get("/admin/jobs/", headers={"accept": "text/html"}, follow_redirects=False)
    assert redirect.headers["location"].startswith("/admin/jobs/login")
    page = client.get("/admin/jobs/login")
    assert 'href="/admin/jobs/static/dashboard.css"' in page.text
    token = csrf(client, "/admin/jobs/login")
    done = post(client, "/admin/jobs/login", password=PASSWORD, csrf_token=token, next="/jobs")
    assert done.headers["location"] == "/admin/jobs/jobs"
    assert client.get("/admin/jobs/jobs").status_code == 200


def test_password_hash_format_and_loopback() -> None:
    encoded = hash_password("s3cret-pass", salt="abc", iterations=1000)
    assert encoded.startswith("pbkdf2_sha256$1000$abc$")
    assert verify_password("s3cret-pass", encoded)
    assert not verify_password("other", encoded)
    assert not verify_password("s3cret-pass", "md5$1$x$y")
    assert all(map(is_loopback, ["127.0.0.1", "127.0.1.1", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.5", "example.com", "::"]))


def test_cli_refuses_public_host_without_login(bench: Bench) -> None:
    config = bench.path / "sites" / "common_site_config.json"
    text = config.read_text().replace("dashboard_password_hash", "unused_key")
    config.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "jobbench", "--bench", str(bench.path), "dashboard",
         "--host", "0.0.0.0", "--port", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("Error: --host 0.0.0.0 is not a loopback address")


def test_start_runs_the_dashboard_as_a_child(bench: Bench) -> None:
    from jobbench.start import plan

    (child,) = [c for c in plan(bench) if c.name == "dashboard"]
    assert child.argv[-5:] == ["dashboard", "--host", "127.0.0.1", "--port", "8000"]
    bench.update_common_config({"dashboard_port": 8123, "dashboard_host": "127.0.0.2"})
    (child,) = [c for c in plan(Bench(bench.path)) if c.name == "dashboard"]
    assert child.argv[-4:] == ["--host", "127.0.0.2", "--port", "8123"]
    bench.update_common_config({"dashboard_port": 0})
    assert "dashboard" not in [c.name for c in plan(Bench(bench.path))]
