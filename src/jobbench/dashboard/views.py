"""The dashboard's route handlers: pages (HTML), JSON for polling, metrics, login, actions."""

from __future__ import annotations

import math
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from jobbench.dashboard import actions, data, listing
from jobbench.dashboard.app import (
    Dashboard,
    _base,
    _redirect,
    _set_cookie,
    in_thread,
    safe_next,
)
from jobbench.dashboard.auth import LOGGED_IN, Credentials
from jobbench.dashboard.throttle import client_key
from jobbench.errors import JobbenchError
from jobbench.inspect import STATUSES, metrics_text
from jobbench.jobs.record import split_id

LOG_LIMIT = 100
MAX_LIMIT = 1000
PER_PAGE = 50


def _arg(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def _int(request: Request, name: str, default: int, most: int = 10**9) -> int:
    """A positive whole-number query parameter (clamped to 1..most); 400 for anything else."""
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(
            400, f"the query parameter {name!r} must be a whole number, got {raw[:40]!r}"
        ) from None
    return min(most, max(1, value))


def _limit(request: Request) -> int:
    return _int(request, "limit", LOG_LIMIT, MAX_LIMIT)


class Pages:
    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.inspector = dash.inspector

    # -- pages ------------------------------------------------------------------------------
    async def overview(self, request: Request) -> Response:
        context = await in_thread(data.overview, self.inspector, self.dash.zones.display())
        return self.dash.render(request, "overview.html", page="overview", **context)

    async def _rows(self, request: Request, fn: Any, what: str) -> tuple[list[Any], list[str]]:
        problems: list[str] = []
        site, limit = _arg(request, "site"), _limit(request)
        rows = await in_thread(
            listing.guarded, problems, what, lambda: fn(self.inspector, site, limit), []
        )
        return rows, problems

    async def jobs(self, request: Request) -> Response:
        status = _arg(request, "status")
        if status is not None and status not in STATUSES:
            raise HTTPException(400, f"unknown status {status!r}")
        filters = listing.JobFilters(
            status=status,
            site=_arg(request, "site"),
            queue=_arg(request, "queue"),
            method=_arg(request, "method"),
            q=_arg(request, "q"),
            exc_type=_arg(request, "exc_type"),
            page=_int(request, "page", 1),
            # ``limit`` is the other pages' name for it
            per_page=_int(request, "per_page", _int(request, "limit", PER_PAGE, 500), 500),
        )
        found = await in_thread(listing.jobs, self.inspector, filters)
        return self.dash.render(
            request,
            "jobs.html",
            page="jobs",
            filters=filters,
            query=filters.query(PER_PAGE),
            found=found,
            problems=found.problems,
            statuses=STATUSES,
            queues=self.inspector.queue_names(),
            now=time.time(),
        )

    async def _job(self, request: Request) -> tuple[str, dict[str, Any]]:
        site, job_id = _arg(request, "site"), _arg(request, "id")
        if not site or not job_id:
            raise HTTPException(400, "pass ?site=SITE&id=JOB_ID")
        problems: list[str] = []
        job = await in_thread(
            listing.guarded, problems, f"job {job_id!r}",
            lambda: data.job_detail(self.inspector, site, job_id), None,
        )  # fmt: skip
        if problems:
            raise HTTPException(422, problems[0])
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} on site {site!r}")
        return site, job

    async def job(self, request: Request) -> Response:
        site, job = await self._job(request)
        return self.dash.render(request, "job.html", page="jobs", job=job, site=site)

    async def job_types(self, request: Request) -> Response:
        problems: list[str] = []
        site = _arg(request, "site")
        rows = await in_thread(
            listing.guarded, problems, "the Scheduled Job Types",
            lambda: data.job_types(self.inspector, site), [],
        )  # fmt: skip
        return self.dash.render(
            request, "scheduled.html", page="scheduled", rows=rows, problems=problems
        )

    async def logs(self, request: Request) -> Response:
        rows, problems = await self._rows(request, data.job_logs, "the Scheduled Job Logs")
        return self.dash.render(request, "logs.html", page="logs", rows=rows, problems=problems)

    async def tasks(self, request: Request) -> Response:
        rows, problems = await self._rows(request, data.tasks, "the Background Tasks")
        return self.dash.render(request, "tasks.html", page="tasks", rows=rows, problems=problems)

    # -- JSON and metrics -------------------------------------------------------------------
    async def api_tasks(self, request: Request) -> Response:
        rows, problems = await self._rows(request, data.tasks, "the Background Tasks")
        if problems:
            return JSONResponse({"error": problems[0]}, 503)
        keys = ("site", "task_id", "status", "stage")
        return JSONResponse(
            [
                {**{k: r.get(k) for k in keys}, "progress": listing.number(r.get("progress"))}
                for r in rows
            ]
        )

    async def api_job(self, request: Request) -> Response:
        _, job = await self._job(request)
        return JSONResponse({k: job[k] for k in ("id", "status", "progress", "stage")})

    async def metrics(self, request: Request) -> Response:
        problems: list[str] = []
        text = await in_thread(
            listing.guarded, problems, "the metrics", lambda: metrics_text(self.inspector), ""
        )
        if problems:  # a scraper should see a failed scrape, not a page of zeros
            return PlainTextResponse(f"# {problems[0]}\n", 503)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    # -- login ------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        creds = self.dash.credentials()
        if request.method == "GET":
            return self.dash.render(
                request, "login.html", page="login", configured=creds.configured
            )
        throttle = self.dash.throttle
        client = client_key(request.client.host if request.client else None)
        # Both checks come before the pbkdf2 work: a throttled guess costs next to nothing.
        wait = throttle.wait(client)
        if wait:
            return self._throttled(request, creds, wait)
        fields = await self.dash.form(request)
        wait = throttle.attempt(client)
        if wait:
            return self._throttled(request, creds, wait)
        if not await in_thread(creds.check, fields.get("password", "")):
            return self.dash.render(
                request,
                "login.html",
                status=401,
                page="login",
                configured=creds.configured,
                failed=True,
                next_path=fields.get("next"),
            )
        throttle.succeeded(client)
        session = self.dash.signer.new_session(LOGGED_IN)  # a new nonce: a new CSRF token
        response = _redirect(request, fields)
        _set_cookie(request, response, self.dash.dump_session(session))
        return response

    def _throttled(self, request: Request, creds: Credentials, wait: float) -> Response:
        seconds = max(1, math.ceil(wait))
        return self.dash.render(
            request,
            "login.html",
            status=429,
            headers={"Retry-After": str(seconds)},
            page="login",
            configured=creds.configured,
            throttled=seconds,
        )

    async def logout(self, request: Request) -> Response:
        await self.dash.form(request)
        # A new epoch ends every logged-in session of the bench, this cookie and any copy.
        await in_thread(self.dash.epoch.bump)
        response = RedirectResponse(f"{_base(request)}/login", 303)
        request.state.session = session = self.dash.signer.new_session()
        _set_cookie(request, response, self.dash.dump_session(session))
        self.dash.flash(request, response, "ok", "Logged out.")
        return response

    # -- actions ----------------------------------------------------------------------------
    async def _act(self, request: Request, fn: Any, *args: str) -> Response:
        fields = await self.dash.form(request)
        question = confirmation(request.url.path, fields)
        if question and fields.get("confirmed") != "1":
            return self._confirm(request, question, fields, {})
        return await self._done(request, fields, fn, *[fields.get(a, "") for a in args])

    async def _done(
        self, request: Request, fields: dict[str, str], fn: Any, *args: Any
    ) -> Response:
        try:
            message = await in_thread(fn, self.dash.bench, *args)
        except JobbenchError as exc:
            kind, message = "bad", str(exc)
        else:
            kind = "ok"
        response = _redirect(request, fields)
        self.dash.flash(request, response, kind, str(message))
        return response

    def _confirm(
        self,
        request: Request,
        question: str,
        fields: dict[str, str],
        lists: dict[str, list[str]],
    ) -> Response:
        """The confirmation step of a destructive action: a page whose form posts the same
        fields again with ``confirmed=1`` (no script needed); its other button goes back."""
        hidden = [(k, v) for k, v in fields.items() if k not in ("confirmed", *lists)]
        hidden += [(k, v) for k, values in lists.items() for v in values]
        return self.dash.render(
            request,
            "confirm.html",
            page="confirm",
            question=question,
            action_url=request.url.path,  # the same action, mount prefix included
            hidden=hidden,
            back=safe_next(fields.get("next")),  # a path inside the dashboard, as redirects
            jobs=[split_id(v) for v in lists.get("job", [])][:50],
        )

    async def job_action(self, request: Request) -> Response:
        return await self._act(request, actions.job_action, "site", "job_id", "action")

    async def purge(self, request: Request) -> Response:
        return await self._act(request, _purge, "site", "queue")

    async def job_type_action(self, request: Request) -> Response:
        return await self._act(request, actions.job_type_action, "site", "name", "action")

    async def bulk_action(self, request: Request) -> Response:
        fields, lists = await self.dash.form_lists(request)
        jobs = [split_id(v) for v in lists.get("job", [])]
        action = fields.get("action", "")
        if not jobs or action not in actions.BULK_ACTIONS:
            return await self._done(request, fields, actions.bulk_action, action, jobs)
        if fields.get("confirmed") != "1":
            n = len(jobs)
            what = "Retry" if action == "retry" else "Delete"
            question = f"{what} {n} selected job{'s' if n != 1 else ''}?"
            return self._confirm(request, question, fields, {"job": lists["job"]})
        return await self._done(request, fields, actions.bulk_action, action, jobs)

    async def retry_failed(self, request: Request) -> Response:
        """Retry every failed job of a site / queue / error class: asked first with the count,
        and the jobs found again once confirmed (those that failed in between included)."""
        fields = await self.dash.form(request)
        filters = listing.JobFilters(
            site=fields.get("site") or None,
            queue=fields.get("queue") or None,
            exc_type=fields.get("exc_type") or None,
        )
        jobs = await in_thread(listing.failed_matching, self.inspector, filters)
        if fields.get("confirmed") != "1" and jobs:
            where = [f"site {filters.site}" if filters.site else "every site"]
            where += [f"queue {filters.queue}"] * bool(filters.queue)
            where += [f"error {filters.exc_type}"] * bool(filters.exc_type)
            n = len(jobs)
            question = f"Retry all {n} failed job{'s' if n != 1 else ''} of {', '.join(where)}?"
            return self._confirm(request, question, fields, {})
        return await self._done(request, fields, actions.retry_all, jobs)


def confirmation(path: str, fields: dict[str, str]) -> str | None:
    """The question to confirm before this action, or None when it needs none."""
    site, job = fields.get("site") or "", fields.get("job_id", "")
    action = fields.get("action", "")
    if path.endswith("/actions/purge-failed"):
        where = f"site {site}" if site else "every site"
        queue = f", queue {fields['queue']}" if fields.get("queue") else ""
        return f"Delete every failed job of {where}{queue}? This cannot be undone."
    if path.endswith("/actions/job") and action == "delete":
        return f"Delete job {job} of site {site}? Its record, result and traceback are lost."
    if path.endswith("/actions/job") and action in ("stop", "cancel"):
        return f"{action.capitalize()} job {job} of site {site}?"
    return None


def _purge(bench: Any, site: str, queue: str) -> str:
    return actions.purge_failed(bench, site or None, queue or None)
