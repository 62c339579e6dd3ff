"""jobbench from Flask: enqueue a job from a view and show its status.

    jobbench init /tmp/wb && jobbench --bench /tmp/wb new-site site1
    cd examples
    JOBBENCH_BENCH=/tmp/wb JOBBENCH_SITE=site1 flask --app flask_app.app run   # the web app
    PYTHONPATH=. jobbench --bench /tmp/wb worker                               # a worker

    curl -X POST localhost:5000/jobs -H 'Content-Type: application/json' -d '{"x": 2, "y": 3}'
    curl localhost:5000/jobs/JOB_ID

Each request runs inside ``jobbench.site_context`` (see ``with_site``); the view's work is
committed when it returns and rolled back when it raises, so ``enqueue_after_commit=True``
enqueues only if the request succeeds.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, abort, current_app, request

import jobbench

from .tasks import add


def with_site(view: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``view`` in the app's site; commit when it returns (closing rolls back otherwise)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bench, site = current_app.config["JOBBENCH_BENCH"], current_app.config["JOBBENCH_SITE"]
        with jobbench.site_context(site, bench_path=bench):
            response = view(*args, **kwargs)
            jobbench.db.commit()  # runs the after-commit callbacks: deferred enqueues happen here
            return response

    return wrapper


def create_app(bench: str | None = None, site: str | None = None) -> Flask:
    """The app factory (``flask --app flask_app.app run`` finds it)."""
    app = Flask(__name__)
    app.config["JOBBENCH_BENCH"] = bench or os.environ.get("JOBBENCH_BENCH")
    app.config["JOBBENCH_SITE"] = site or os.environ.get("JOBBENCH_SITE", "site1")

    @app.post("/jobs")
    @with_site
    def enqueue_add() -> tuple[dict[str, Any], int]:
        body = request.get_json(force=True)
        x, y = int(body["x"]), int(body["y"])
        if body.get("after_commit"):
            # Deferred until this request's transaction commits; returns None, so choose the id.
            job_id = uuid.uuid4().hex
            jobbench.enqueue(add, job_id=job_id, enqueue_after_commit=True, x=x, y=y)
            if body.get("fail"):
                raise RuntimeError("the request failed after enqueueing: the job is dropped")
            return {"job_id": job_id, "status": "enqueued after commit"}, 202
        job = jobbench.enqueue(add, queue="short", track_job=True, x=x, y=y)
        return {"job_id": job.id, "status": job.status}, 202

    @app.get("/jobs/<job_id>")
    @with_site
    def job_status(job_id: str) -> dict[str, Any]:
        job = jobbench.get_job(job_id)  # the id as enqueue returned it; the site namespaces it
        if job is None:
            abort(404)
        return {
            "job_id": job.id,
            "status": job.status,
            "result": job.result,
            "progress": job.progress,
            "error": job.exc_info.strip().splitlines()[-1] if job.exc_info else None,
        }

    return app
