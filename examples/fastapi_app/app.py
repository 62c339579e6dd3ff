"""jobbench from FastAPI: enqueue a job from an endpoint and show its status.

    jobbench init /tmp/wb && jobbench --bench /tmp/wb new-site site1
    cd examples
    JOBBENCH_BENCH=/tmp/wb JOBBENCH_SITE=site1 uvicorn --factory fastapi_app.app:create_app
    PYTHONPATH=. jobbench --bench /tmp/wb worker

    curl -X POST localhost:8000/jobs -H 'Content-Type: application/json' -d '{"x": 2, "y": 3}'
    curl localhost:8000/jobs/JOB_ID

The endpoints are plain ``def`` functions: FastAPI runs them in a thread pool, and jobbench's
calls (which talk to the site database and the broker) block. Each one opens the site with
``site_open()`` *inside* its body: the current site is a context variable, and FastAPI runs a
``yield`` dependency in a different copy of the context than the endpoint, so a site opened
in a dependency would not be seen by the endpoint.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import jobbench

from .tasks import add


class AddRequest(BaseModel):
    x: int
    y: int
    after_commit: bool = False


def create_app(bench: str | None = None, site: str | None = None) -> FastAPI:
    bench = bench or os.environ.get("JOBBENCH_BENCH")
    site = site or os.environ.get("JOBBENCH_SITE", "site1")
    app = FastAPI(title="jobbench example")

    @contextmanager
    def site_open() -> Iterator[None]:
        """The app's site for one block; commit at its end (leaving by an exception rolls back)."""
        with jobbench.site_context(site, bench_path=bench):
            yield
            jobbench.db.commit()  # runs the after-commit callbacks: deferred enqueues happen here

    @app.post("/jobs", status_code=202)
    def enqueue_add(body: AddRequest) -> dict[str, Any]:
        with site_open():
            if body.after_commit:
                job_id = uuid.uuid4().hex  # enqueue_after_commit returns None: choose the id
                jobbench.enqueue(add, job_id=job_id, enqueue_after_commit=True, x=body.x, y=body.y)
                return {"job_id": job_id, "status": "enqueued after commit"}
            job = jobbench.enqueue(add, queue="short", track_job=True, x=body.x, y=body.y)
            return {"job_id": job.id, "status": job.status}

    @app.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        with site_open():
            job = jobbench.get_job(job_id)
            if job is None:
                raise HTTPException(404, f"no job {job_id!r}")
            return {
                "job_id": job.id,
                "status": job.status,
                "result": job.result,
                "progress": job.progress,
                "error": job.exc_info.strip().splitlines()[-1] if job.exc_info else None,
            }

    return app
