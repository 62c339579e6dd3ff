"""The dashboard's route handlers: pages (HTML), JSON for polling, metrics, login, actions."""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from jobbench.dashboard import actions, data
from jobbench.dashboard.app import Dashboard, _base, _redirect, _set_cookie, in_thread
from jobbench.dashboard.auth import LOGGED_IN
from jobbench.errors import JobbenchError
from jobbench.inspect import STATUSES, metrics_text

LOG_LIMIT = 100
PER_PAGE = 50


def _arg(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def _int(request: Request, name: str, default: int, most: int = 10**9) -> int:
    try:
        return min(most, max(1, int(request.query_params.get(name, default))))
    except ValueError:
        return default


class Pages:
    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.inspector = dash.inspector

    # -- pages ------------------------------------------------------------------------------
    async def overview(self, request: Request) -> Response:
        context = await in_thread(data.overview, self.inspector)
        return self.dash.render(request, "overview.html", page="overview", **context)

    async def jobs(self, request: Request) -> Response:
        status = _arg(request, "status")
        if status is not None and status not in STATUSES:
            raise HTTPException(400, f"unknown status {status!r}")
        filters = data.JobFilters(
            status=status,
            site=_arg(request, "site"),
            queue=_arg(request, "queue"),
            method=_arg(request, "method"),
            page=_int(request, "page", 1),
            per_page=_int(request, "per_page", PER_PAGE, 500),
        )
        found = await in_thread(data.jobs, self.inspector, filters)
        query = {k: v for k, v in vars(filters).items() if v and k != "page"}
        if filters.per_page == PER_PAGE:
            del query["per_page"]
        return self.dash.render(
            request,
            "jobs.html",
            page="jobs",
            filters=filters,
            query=query,
            found=found,
            statuses=STATUSES,
            queues=self.inspector.queue_names(),
            now=time.time(),
        )

    async def job(self, request: Request) -> Response:
        site, job_id = _arg(request, "site"), _arg(request, "id")
        if not site or not job_id:
            raise HTTPException(400, "pass ?site=SITE&id=JOB_ID")
        job = await in_thread(data.job_detail, self.inspector, site, job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} on site {site!r}")
        return self.dash.render(request, "job.html", page="jobs", job=job, site=site)

    async def job_types(self, request: Request) -> Response:
        rows = await in_thread(data.job_types, self.inspector, _arg(request, "site"))
        return self.dash.render(request, "scheduled.html", page="scheduled", rows=rows)

    async def logs(self, request: Request) -> Response:
        rows = await in_thread(data.job_logs, self.inspector, _arg(request, "site"), LOG_LIMIT)
        return self.dash.render(request, "logs.html", page="logs", rows=rows)

    async def tasks(self, request: Request) -> Response:
        rows = await in_thread(data.tasks, self.inspector, _arg(request, "site"), LOG_LIMIT)
        return self.dash.render(request, "tasks.html", page="tasks", rows=rows)

    # -- JSON and metrics -------------------------------------------------------------------
    async def api_tasks(self, request: Request) -> Response:
        rows = await in_thread(data.tasks, self.inspector, _arg(request, "site"), LOG_LIMIT)
        return JSONResponse(
            [
                {k: r.get(k) for k in ("site", "task_id", "status", "progress", "stage")}
                for r in rows
            ]
        )

    async def api_job(self, request: Request) -> Response:
        site, job_id = _arg(request, "site"), _arg(request, "id")
        if not site or not job_id:
            raise HTTPException(400, "pass ?site=SITE&id=JOB_ID")
        job = await in_thread(data.job_detail, self.inspector, site, job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} on site {site!r}")
        return JSONResponse({k: job[k] for k in ("id", "status", "progress", "stage")})

    async def metrics(self, request: Request) -> Response:
        text = await in_thread(metrics_text, self.inspector)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    # -- login ------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        creds = self.dash.credentials()
        if request.method == "GET":
            return self.dash.render(
                request, "login.html", page="login", configured=creds.configured
            )
        fields = await self.dash.form(request)
        secret = fields.get("password", "")
        ok = await in_thread(creds.check, secret)
        if not ok:
            return self.dash.render(
                request,
                "login.html",
                status=401,
                page="login",
                configured=creds.configured,
                failed=True,
                next_path=fields.get("next"),
            )
        session = self.dash.signer.new_session(LOGGED_IN)
        response = _redirect(request, fields)
        _set_cookie(request, response, self.dash.signer.dump(session))
        return response

    async def logout(self, request: Request) -> Response:
        await self.dash.form(request)
        response = RedirectResponse(f"{_base(request)}/login", 303)
        _set_cookie(request, response, self.dash.signer.dump(self.dash.signer.new_session()))
        return response

    # -- actions ----------------------------------------------------------------------------
    async def _act(self, request: Request, fn: Any, *args: Any) -> Response:
        fields = await self.dash.form(request)
        try:
            message = await in_thread(fn, self.dash.bench, *[fields.get(a, "") for a in args])
        except JobbenchError as exc:
            return _redirect(request, fields, error=str(exc))
        return _redirect(request, fields, msg=message)

    async def job_action(self, request: Request) -> Response:
        return await self._act(request, actions.job_action, "site", "job_id", "action")

    async def purge(self, request: Request) -> Response:
        return await self._act(request, _purge, "site", "queue")

    async def job_type_action(self, request: Request) -> Response:
        return await self._act(request, actions.job_type_action, "site", "name", "action")


def _purge(bench: Any, site: str, queue: str) -> str:
    return actions.purge_failed(bench, site or None, queue or None)
