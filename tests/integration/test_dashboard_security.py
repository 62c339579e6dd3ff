"""The dashboard's defences over real HTTP (Starlette's TestClient on the real app, a temp
SQLite bench), and its refusals to start through the real CLI (subprocesses):

* only allowed Host names are served (DNS rebinding), POSTs only from the own origin;
* login attempts are throttled per client and globally, before any pbkdf2 work;
* short tokens and missing or short secret keys stop the dashboard with a one-line error;
* logout and a credentials change end sessions, copied cookies included, across app instances;
* security headers on every response; banners never come from the query string;
* a job record with unreadable fields, or one that cannot be read at all, breaks no page;
* a non-integer ``limit`` is a clear 400.
"""

from __future__ import annotations

import json
import re
import sqlite3
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
from jobbench.dashboard import auth  # noqa: E402
from jobbench.dashboard.app import create_app  # noqa: E402
from jobbench.dashboard.throttle import Limits, LoginThrottle, client_key  # noqa: E402
from jobbench.errors import ConfigError, InsecureConfigError  # noqa: E402
from jobbench.sites import new_site  # noqa: E402

warnings.filterwarnings("ignore", message=".*httpx2.*")
from starlette.testclient import TestClient  # noqa: E402

from ports import free_port  # noqa: E402

PASSWORD = "correct horse battery"
TOKEN = "t" * 40
ORIGIN = "http://localhost"
HTML = {"accept": "text/html"}
PAGES = ["/", "/jobs", "/jobs?status=queued", "/scheduled", "/logs", "/tasks", "/metrics"]


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    bench = init_bench(tmp_path / "bench")
    new_site(bench, "s1")
    bench.update_common_config(
        {
            "dashboard_password_hash": auth.hash_password(PASSWORD, iterations=1000),
            "allowed_job_modules": ["os"],
        }
    )
    yield Bench(bench.path)
    close_brokers()


def client_for(app: Any, origin: str | None = ORIGIN, base_url: str = ORIGIN) -> TestClient:
    return TestClient(app, base_url=base_url, headers={"origin": origin} if origin else {})


def csrf(client: TestClient, path: str = "/") -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client: TestClient, password: str = PASSWORD) -> Any:
    token = csrf(client, "/login")
    return client.post(
        "/login", data={"password": password, "csrf_token": token}, follow_redirects=False
    )


def enqueue(bench: Bench, method: str = "os.getcwd") -> Any:
    with jobbench.site_context("s1", bench.path) as local:
        job = jobbench.enqueue(method)
        local.db.commit()
        return job


def status(bench: Bench, job_id: str) -> str | None:
    with jobbench.site_context("s1", bench.path):
        return jobbench.get_job_status(job_id)  # type: ignore[no-any-return]


def set_config(bench: Bench, **changes: Any) -> None:
    """Edit common_site_config.json directly (a value of None removes the key)."""
    path = bench.common_config_path
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))


def cli(bench: Bench, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobbench", "--bench", str(bench.path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- hosts and origins ----------------------------------------------------------------------------
def test_unknown_host_is_refused(bench: Bench) -> None:
    app = create_app(bench.path)
    for host in ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST."]:
        assert client_for(app).get("/", headers={"host": host}).status_code == 200, host
    for host in ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "[::1]x", ""]:
        refused = client_for(app).get("/", headers={"host": host, **HTML})
        assert refused.status_code == 400, host
    refused = client_for(app).get("/jobs", headers={"host": "rebound.example", **HTML})
    assert "<h1>400 Bad Request</h1>" in refused.text and "dashboard_allowed_hosts" in refused.text
    plain = client_for(app).get("/metrics", headers={"host": "rebound.example"})
    assert plain.status_code == 400 and plain.text.startswith("Bad Request: ")
    assert "jobbench_queue_depth" not in plain.text

    bench.update_common_config({"dashboard_host": "jobs.internal"})
    named = create_app(bench.path)
    assert client_for(named).get("/", headers={"host": "jobs.internal:8000"}).status_code == 200
    bench.update_common_config({"dashboard_host": "0.0.0.0"})  # a wildcard adds no name
    wild = create_app(bench.path, listen_host="::")
    assert client_for(wild).get("/", headers={"host": "0.0.0.0"}).status_code == 400
    bench.update_common_config({"dashboard_allowed_hosts": ["jobs.example.com"]})
    configured = create_app(bench.path)
    assert client_for(configured).get("/", headers={"host": "jobs.example.com"}).status_code == 200
    assert client_for(configured).get("/", headers={"host": "localhost"}).status_code == 400
    explicit = create_app(bench.path, allowed_hosts=["mounted.example"])
    assert client_for(explicit).get("/", headers={"host": "mounted.example"}).status_code == 200


def stop(client: TestClient, job_id: str, token: str, **headers: str) -> Any:
    fields = {"site": "s1", "job_id": job_id, "action": "stop", "csrf_token": token}
    fields["confirmed"] = "1"  # past the confirmation step (test_dashboard_http tests it)
    return client.post("/actions/job", data=fields, headers=headers, follow_redirects=False)


def test_cross_origin_post_is_refused(bench: Bench) -> None:
    client = client_for(create_app(bench.path), origin=None)
    token = csrf(client)
    job = enqueue(bench)
    for origin in [
        "http://evil.example",
        "http://localhost:9999",  # another local service: another origin
        "https://localhost",
        "null",
        "http://localhost.evil.example",
    ]:
        refused = stop(client, job.id, token, origin=origin, **HTML)
        assert refused.status_code == 403, origin
        assert "another origin" in refused.text or "from origin" in refused.text
    cross_referer = stop(client, job.id, token, referer="http://evil.example/page")
    assert cross_referer.status_code == 403
    assert status(bench, job.id) == "queued"
    same_referer = stop(client, job.id, token, referer="http://localhost/jobs?status=queued")
    assert same_referer.status_code == 303 and status(bench, job.id) == "canceled"
    login_from_elsewhere = client.post(
        "/login", data={"password": PASSWORD, "csrf_token": token},
        headers={"origin": "http://evil.example"},
    )  # fmt: skip
    assert login_from_elsewhere.status_code == 403


def test_behind_a_tls_proxy_a_configured_name_is_its_origin(bench: Bench) -> None:
    bench.update_common_config({"dashboard_allowed_hosts": ["jobs.example.com"]})
    client = client_for(
        create_app(bench.path), "https://jobs.example.com", "http://jobs.example.com"
    )
    job = enqueue(bench)
    assert stop(client, job.id, csrf(client)).status_code == 303
    assert status(bench, job.id) == "canceled"


def test_post_without_origin_or_referer_is_refused_unless_bearer(bench: Bench) -> None:
    bench.update_common_config({"dashboard_token": TOKEN})
    client = client_for(create_app(bench.path, require_auth=True), origin=None)
    job = enqueue(bench)
    bare = stop(client, job.id, "no-token", **HTML)
    assert bare.status_code == 403 and "without an Origin or Referer" in bare.text
    wrong = stop(client, job.id, "", authorization="Bearer " + "x" * 40)
    assert wrong.status_code == 403
    assert status(bench, job.id) == "queued"
    api = stop(client, job.id, "", authorization=f"Bearer {TOKEN}")  # API client, no CSRF
    assert api.status_code == 303 and status(bench, job.id) == "canceled"


# -- login throttling -----------------------------------------------------------------------------
def test_brute_force_gets_429_and_no_pbkdf2_work(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda p, e: calls.append(p) or real(p, e))
    app = create_app(bench.path, require_auth=True)
    now = [1000.0]
    app.state.dashboard.throttle.clock = lambda: now[0]
    client = client_for(app)
    for i in range(5):
        assert login(client, f"wrong-{i}").status_code == 401
    assert len(calls) == 5
    blocked = login(client, PASSWORD)  # even the right password: the check is not run
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "1"
    assert "Too many failed logins" in blocked.text and len(calls) == 5
    now[0] += 1.0
    assert login(client, "wrong-again").status_code == 401 and len(calls) == 6
    assert login(client, PASSWORD).headers["retry-after"] == "2"  # doubles each failure
    now[0] += 2.0
    assert login(client, "wrong-3").status_code == 401
    assert login(client, "x").headers["retry-after"] == "4"
    now[0] += 4.0
    assert login(client, PASSWORD).status_code == 303  # a success clears the client
    assert len(calls) == 8
    assert login(client, "wrong").status_code == 401


def test_throttle_global_cap_backoff_and_memory_bound() -> None:
    now = [0.0]
    limits = Limits(per_client=3, globally=5, window=60.0, base=1.0, cap=8.0, max_clients=50)
    throttle = LoginThrottle(limits, clock=lambda: now[0])
    for i in range(5):
        assert throttle.attempt(f"10.0.0.{i}") == 0  # each client below its own limit
    assert throttle.wait("10.0.0.99") == 1.0  # but together over the global cap
    assert throttle.attempt("10.0.0.99") == 1.0
    now[0] += 1.0
    assert throttle.attempt("10.0.0.99") == 0
    assert throttle.wait("10.0.0.100") == 2.0
    for _ in range(10):
        now[0] += 10.0
        throttle.attempt("10.0.0.7")
    assert throttle.wait("10.0.0.7") == 8.0  # capped
    now[0] += 1000.0  # past the window: forgotten
    assert throttle.wait("10.0.0.7") == 0
    for i in range(200):
        throttle.attempt(f"192.0.2.{i}")
    assert len(throttle._failures) <= 51
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") == "2001:db8::/64"
    assert client_key("192.0.2.1") == "192.0.2.1" and client_key(None) == "unknown"


# -- tokens and secret keys -----------------------------------------------------------------------
def test_short_token_refuses_to_start(bench: Bench) -> None:
    from jobbench.start import dashboard_problem, plan

    bench.update_common_config({"dashboard_token": "a"})  # the config file accepts it...
    with pytest.raises(InsecureConfigError, match="at least 32"):
        create_app(bench.path)  # ...the dashboard does not
    result = cli(bench, "dashboard", "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert "dashboard_token of 1 characters" in result.stderr
    assert "jobbench dashboard generate-token" in result.stderr
    assert "dashboard" not in [c.name for c in plan(Bench(bench.path))]
    assert "generate-token" in str(dashboard_problem(Bench(bench.path)))


def test_generate_token_stores_one_if_none_exists(bench: Bench) -> None:
    made = cli(bench, "dashboard", "generate-token")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) >= 32 and Bench(bench.path).common_config().dashboard_token == token
    again = cli(bench, "dashboard", "generate-token")
    assert again.returncode == 1 and "--replace" in again.stderr
    assert Bench(bench.path).common_config().dashboard_token == token
    client = client_for(create_app(bench.path, require_auth=True))
    assert client.get("/metrics", headers={"authorization": f"Bearer {token}"}).status_code == 200
    replaced = cli(bench, "dashboard", "generate-token", "--replace")
    assert replaced.returncode == 0 and replaced.stdout.strip() != token
    assert client.get("/metrics", headers={"authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize(
    ("secret", "hint"),
    [
        (None, "secrets.token_hex(32)"),
        ("too-short-0123456789abcdef", "secrets.token_hex(32)"),
        ("", "fix the value in that file"),  # the config layer already refuses an empty one
    ],
)
def test_missing_or_short_secret_key_refuses_to_start(
    bench: Bench, secret: str | None, hint: str
) -> None:
    set_config(bench, secret_key=secret)
    with pytest.raises(ConfigError, match="secret_key"):
        create_app(bench.path)
    result = cli(bench, "dashboard", "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert "secret_key" in result.stderr and hint in result.stderr


def test_require_auth_setting_on_loopback(bench: Bench) -> None:
    bench.update_common_config({"dashboard_require_auth": True})
    client = client_for(create_app(bench.path))  # loopback, no require_auth argument
    assert client.get("/").status_code == 401
    assert login(client).status_code == 303 and client.get("/").status_code == 200
    set_config(bench, dashboard_password_hash=None)
    result = cli(bench, "dashboard", "--host", "127.0.0.1", "--port", str(free_port()))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: dashboard_require_auth is set, so the dashboard needs")


# -- sessions ------------------------------------------------------------------------------------
def test_logout_revokes_a_copied_cookie(bench: Bench) -> None:
    app = create_app(bench.path, require_auth=True)
    client = client_for(app)
    assert login(client).status_code == 303
    copied = client.cookies["jobbench_session"]
    thief = client_for(app)
    thief.cookies.set("jobbench_session", copied)
    assert thief.get("/").status_code == 200
    other_process = client_for(create_app(bench.path, require_auth=True))  # same bench
    other_process.cookies.set("jobbench_session", copied)
    assert other_process.get("/").status_code == 200
    out = client.post("/logout", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert "Logged out." in client.get("/login").text
    for revoked in (client, thief, other_process):
        revoked.cookies.set("jobbench_session", copied)
        assert revoked.get("/").status_code == 401
    restarted = client_for(create_app(bench.path, require_auth=True))  # the epoch is durable
    restarted.cookies.set("jobbench_session", copied)
    assert restarted.get("/").status_code == 401
    assert login(restarted).status_code == 303 and restarted.get("/").status_code == 200


def test_password_or_token_change_revokes_sessions(bench: Bench) -> None:
    app = create_app(bench.path, require_auth=True)
    client = client_for(app)
    assert login(client).status_code == 303 and client.get("/").status_code == 200
    bench.update_common_config({"dashboard_password_hash": auth.hash_password("new-password!")})
    assert client.get("/").status_code == 401
    assert login(client, PASSWORD).status_code == 401
    assert login(client, "new-password!").status_code == 303
    assert client.get("/").status_code == 200
    bench.update_common_config({"dashboard_token": TOKEN})
    assert client.get("/").status_code == 401


# -- headers and banners --------------------------------------------------------------------------
def test_security_headers_on_every_response(bench: Bench) -> None:
    job = enqueue(bench)
    app = create_app(bench.path)
    client = client_for(app, origin=None)
    responses = [client.get(p, headers=HTML) for p in [*PAGES, f"/job?site=s1&id={job.id}"]]
    responses += [
        client.get("/api/tasks"),
        client.get(f"/api/job?site=s1&id={job.id}"),
        client.get("/login"),
        client.get("/static/dashboard.js"),
        client.get("/nowhere", headers=HTML),
        client.get("/logs?limit=x", headers=HTML),
        client.get("/", headers={"host": "evil.example"}),
        client.post("/actions/job", data={}),
        client_for(create_app(bench.path, require_auth=True)).get("/jobs"),
    ]
    assert sorted({r.status_code for r in responses}) == [200, 400, 401, 403, 404]
    for r in responses:
        where = (r.request.url, r.status_code)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, where
        assert "unsafe-inline" not in csp, where
        assert r.headers["x-frame-options"] == "DENY", where
        assert r.headers["x-content-type-options"] == "nosniff", where
        assert r.headers["referrer-policy"] == "same-origin", where
        if "/static/" not in str(r.request.url):
            assert r.headers["cache-control"] == "no-store", where
        else:
            assert "cache-control" not in r.headers, where  # static files may be cached
    first = client_for(app).get("/static/dashboard.css")  # a first visit's cookie: whole app
    assert "path=/;" in first.headers["set-cookie"].lower() + ";"
    for r in responses:
        if r.headers.get("content-type", "").startswith("text/html"):
            assert "<script>" not in r.text and "style=" not in r.text, r.request.url


def test_banner_text_never_comes_from_the_query_string(bench: Bench) -> None:
    client = client_for(create_app(bench.path))
    bait = "Log in at https://evil.example"
    for path in ["/", "/jobs", "/login"]:
        page = client.get(f"{path}?msg={bait}&error={bait}")
        assert page.status_code == 200 and "evil.example" not in page.text, path
    client.cookies.set("jobbench_flash", "ok.TG9nIGluIGF0IGh0dHBzOi8vZXZpbC5leGFtcGxl.0000")
    assert "evil.example" not in client.get("/").text  # an unsigned flash cookie is ignored
    other = client_for(create_app(bench.path))
    job = enqueue(bench)
    fields = {"site": "s1", "job_id": job.id, "action": "stop", "csrf_token": csrf(other)}
    fields["confirmed"] = "1"
    other.post("/actions/job", data=fields, follow_redirects=False)
    client.cookies.set("jobbench_flash", other.cookies["jobbench_flash"])
    assert 'id="flash"' not in client.get("/").text  # another session's banner is not shown
    assert re.search(r'id="flash">Job [^<]+: canceled<', other.get("/").text)


# -- unreadable records and bad parameters --------------------------------------------------------
def test_record_with_unreadable_fields_breaks_no_page(bench: Bench) -> None:
    job = enqueue(bench)
    good = enqueue(bench)
    conn = sqlite3.connect(bench.sites_path / "queue.sqlite3")
    with conn:
        conn.execute(
            "UPDATE jobs SET progress = 'abc', attempts = 'x', enqueued_at = 'never' WHERE id = ?",
            (job.record.id,),
        )
    conn.close()
    client = client_for(create_app(bench.path))
    for path in PAGES:
        response = client.get(path, headers=HTML)
        assert response.status_code == 200, (path, response.text)
    assert job.id in client.get("/jobs").text and good.id in client.get("/jobs").text
    for path in [f"/job?site=s1&id={job.id}", f"/api/job?site=s1&id={job.id}"]:
        assert client.get(path).status_code < 500, path


def test_records_that_cannot_be_read_at_all_break_no_page(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobbench.jobs.record import JobRecord

    job = enqueue(bench)

    def unreadable(cls: Any, data: Any) -> Any:
        raise ValueError("could not convert string to float: 'abc'")

    monkeypatch.setattr(JobRecord, "from_mapping", classmethod(unreadable))
    client = client_for(create_app(bench.path))
    for path in ["/jobs", "/jobs?status=queued", "/jobs?method=os.getcwd"]:
        page = client.get(path, headers=HTML)
        assert page.status_code == 200, (path, page.text)
        assert "Could not read the job records: ValueError" in page.text, path
    assert client.get("/", headers=HTML).status_code == 200
    detail = client.get(f"/job?site=s1&id={job.id}", headers=HTML)
    assert detail.status_code == 422 and "could not convert" in detail.text
    metrics = client.get("/metrics")
    assert metrics.status_code == 503 and metrics.text.startswith("# Could not read")


def test_non_integer_limit_is_a_clear_400(bench: Bench) -> None:
    client = client_for(create_app(bench.path))
    for path in ["/logs?limit=abc", "/tasks?limit=1.5", "/jobs?limit=ten", "/jobs?page=x"]:
        page = client.get(path, headers=HTML)
        assert page.status_code == 400, path
        assert "must be a whole number" in page.text and "<h1>400 Bad Request</h1>" in page.text
    api = client.get("/api/tasks?limit=" + "9" * 5000)
    assert api.status_code == 400 and "'limit' must be a whole number" in api.text
    assert client.get("/logs?limit=5").status_code == 200
    assert client.get("/tasks?limit=-3").status_code == 200  # clamped, like page and per_page


def test_login_next_never_leaves_the_dashboard(bench: Bench) -> None:
    client = client_for(create_app(bench.path, require_auth=True))
    for target, expected in [
        ("/jobs?status=failed", "/jobs?status=failed"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
        ("/jobs\r\nSet-Cookie: x=y", "/"),
    ]:
        token = csrf(client, "/login")
        done = client.post(
            "/login", data={"password": PASSWORD, "csrf_token": token, "next": target},
            follow_redirects=False,
        )  # fmt: skip
        assert done.status_code == 303 and done.headers["location"] == expected, target
