"""The Flask, FastAPI and Django examples (examples/*_app): enqueue through an HTTP request,
run a burst worker as a real subprocess, then read the job's outcome through another request.

Each app is driven the cheap way (Flask's test client, FastAPI's TestClient, Django's test
Client with the example's settings) against a fresh bench with one site.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import jobbench
from jobbench.bench import init_bench
from jobbench.sites import new_site

from .helpers import cli_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SITE = "web.local"

# Each client is wrapped as post(path, json) / get(path) -> (status code, JSON body).
Post = Callable[[str, dict[str, Any]], tuple[int, Any]]
Get = Callable[[str], tuple[int, Any]]


@pytest.fixture(scope="module")
def web_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bench with one SQLite site, made through the Python API (the examples need no app)."""
    bench = init_bench(tmp_path_factory.mktemp("web") / "bench")
    new_site(bench, SITE)
    # The examples' tasks are project modules, not apps: allowed as docs/frameworks.md says.
    bench.update_common_config({"allowed_job_modules": ["flask_app", "fastapi_app", "django_app"]})
    return bench.path


@pytest.fixture(autouse=True)
def examples_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in ("flask_app", "fastapi_app")]:
        del sys.modules[name]


def run_burst_worker(bench: Path) -> str:
    """``python -m jobbench --bench B worker --burst`` with examples/ importable (as documented:
    the web project's folder on PYTHONPATH)."""
    result = subprocess.run(
        [sys.executable, "-m", "jobbench", "--bench", str(bench), "worker", "--burst"],
        cwd=bench,
        env=cli_env({"PYTHONPATH": str(EXAMPLES)}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def exercise(post: Post, get: Get, bench: Path) -> None:
    """The scenario every example must pass."""
    code, now = post("/jobs", {"x": 2, "y": 3})
    assert code == 202, now
    assert now["status"] == "queued"
    code, later = post("/jobs", {"x": 40, "y": 2, "after_commit": True})
    assert code == 202, later
    assert get(f"/jobs/{now['job_id']}") == (200, _status(now["job_id"], "queued", None, None))
    code, _ = get("/jobs/no-such-job")
    assert code == 404

    log = run_burst_worker(bench)
    assert " 0 failed)" in log, log  # the outcome of each job is checked below

    assert get(f"/jobs/{now['job_id']}") == (200, _status(now["job_id"], "finished", 5, 100.0))
    code, body = get(f"/jobs/{later['job_id']}")
    assert code == 200, body
    assert (body["status"], body["result"]) == ("finished", 42)


def _status(job_id: str, status: str, result: Any, progress: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "status": status,
        "result": result,
        "progress": progress,
        "error": None,
    }


def test_flask_example(web_bench: Path) -> None:
    from flask_app.app import create_app

    app = create_app(str(web_bench), SITE)
    client = app.test_client()

    def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        response = client.post(path, json=body)
        return response.status_code, response.get_json()

    def get(path: str) -> tuple[int, Any]:
        response = client.get(path)
        return response.status_code, response.get_json()

    exercise(post, get, web_bench)


def test_flask_failed_request_drops_its_after_commit_job(web_bench: Path) -> None:
    from flask_app.app import create_app

    def job_ids() -> set[str]:
        with jobbench.site_context(SITE, bench_path=web_bench):
            return {job.id for job in jobbench.list_jobs()}

    app = create_app(str(web_bench), SITE)
    app.testing = False  # a view's exception becomes a 500 response, as in production
    before = job_ids()
    response = app.test_client().post(
        "/jobs", json={"x": 1, "y": 1, "after_commit": True, "fail": True}
    )
    assert response.status_code == 500
    assert job_ids() == before  # the request's rollback dropped the job
    ok = app.test_client().post("/jobs", json={"x": 1, "y": 1, "after_commit": True})
    assert job_ids() == before | {ok.get_json()["job_id"]}  # and a commit enqueues it


@pytest.mark.filterwarnings("ignore:Using `httpx`")  # starlette suggests httpx2
def test_fastapi_example(web_bench: Path) -> None:
    from fastapi.testclient import TestClient
    from fastapi_app.app import create_app

    with TestClient(create_app(str(web_bench), SITE)) as client:

        def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
            response = client.post(path, json=body)
            return response.status_code, response.json()

        def get(path: str) -> tuple[int, Any]:
            response = client.get(path)
            return response.status_code, response.json()

        exercise(post, get, web_bench)


def test_django_example(web_bench: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import django
    from django.conf import settings

    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "django_app.settings")
    django.setup()  # idempotent; the example's settings need no database
    monkeypatch.setattr(settings, "JOBBENCH_BENCH", str(web_bench))
    monkeypatch.setattr(settings, "JOBBENCH_SITE", SITE)
    from django.test import Client

    client = Client()

    def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        response = client.post(path, body, content_type="application/json")
        return response.status_code, response.json()

    def get(path: str) -> tuple[int, Any]:
        response = client.get(path)
        is_json = response.get("Content-Type", "").startswith("application/json")
        return response.status_code, response.json() if is_json else None

    exercise(post, get, web_bench)
