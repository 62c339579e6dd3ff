"""The dashboard ASGI app: ``create_app(bench_path)`` returns a Starlette app that can be served
by uvicorn (``jobbench dashboard``) or mounted in a user's Starlette/FastAPI app::

    app.mount("/jobs-admin", create_app("/path/to/bench", require_auth=True))

Reads go through ``jobbench.inspect.Inspector`` (see ``data``); actions through the public job
and document API (see ``actions``). With ``require_auth`` every route but /login and /static
answers 401 (or redirects browsers to /login) until the visitor logs in; every POST needs the
session's CSRF token whatever the mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from jobbench.bench import Bench, find_bench
from jobbench.dashboard.auth import COOKIE, Credentials, Session, Signer
from jobbench.errors import JobbenchError
from jobbench.inspect import Inspector

HERE = Path(__file__).parent
OPEN_PATHS = ("/login", "/static/")


class Dashboard:
    """State shared by the routes of one app: the bench, its Inspector, signer, templates."""

    def __init__(self, bench: Bench, require_auth: bool) -> None:
        self.bench = bench
        self.require_auth = require_auth
        self.inspector = Inspector(bench)
        self.signer = Signer(str(bench.common_config().secret_key or ""))
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["tojson_pretty"] = _pretty

    def credentials(self) -> Credentials:
        conf = self.bench.common_config()
        return Credentials(conf.get("dashboard_password_hash"), conf.get("dashboard_token"))

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        session: Session = request.state.session
        context.update(
            base=_base(request),
            csrf_token=self.signer.csrf_token(session),
            logged_in=session.logged_in,
            require_auth=self.require_auth,
            message=request.query_params.get("msg"),
            error=request.query_params.get("error"),
            sites=self.bench.list_sites(),
        )
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def form(self, request: Request) -> dict[str, str]:
        """The POSTed form, refused with 403 unless it carries the session's CSRF token."""
        form = await request.form()
        fields = {k: str(v) for k, v in form.items()}
        token = fields.get("csrf_token") or request.headers.get("x-csrf-token")
        if not self.signer.check_csrf(request.state.session, token):
            raise HTTPException(403, "missing or invalid CSRF token")
        return fields


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _path(request: Request) -> str:
    """The request path inside this app (without the mount prefix)."""
    path = request.url.path
    base = _base(request)
    return path[len(base) :] if base and path.startswith(base) else path


class AuthMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: Any, dashboard: Dashboard) -> None:
        super().__init__(app)
        self.dashboard = dashboard

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        dash = self.dashboard
        session = dash.signer.load(request.cookies.get(COOKIE))
        fresh = session is None
        request.state.session = session = session or dash.signer.new_session()
        if dash.require_auth and not self._allowed(request, session):
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                query = request.url.query
                target = quote(_path(request) + (f"?{query}" if query else ""))
                response: Response = RedirectResponse(f"{_base(request)}/login?next={target}", 303)
            else:
                response = PlainTextResponse("authentication required", 401)
        else:
            response = await call_next(request)
        if fresh:
            _set_cookie(request, response, dash.signer.dump(session))
        return response

    def _allowed(self, request: Request, session: Session) -> bool:
        path = _path(request)
        if path == "/login" or path.startswith("/static/") or session.logged_in:
            return True
        return self.dashboard.credentials().check_bearer(request.headers.get("authorization"))


def _set_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=_base(request) or "/",
    )


def _redirect(request: Request, fields: dict[str, str], **params: str) -> Response:
    target = fields.get("next") or "/"
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if params:
        target += ("&" if "?" in target else "?") + urlencode(params)
    return RedirectResponse(f"{_base(request)}{target}", 303)


def _routes(dash: Dashboard) -> list[Route | Mount]:
    from jobbench.dashboard import views

    pages = views.Pages(dash)
    return [
        Route("/", pages.overview, name="overview"),
        Route("/jobs", pages.jobs, name="jobs"),
        Route("/job", pages.job, name="job"),
        Route("/scheduled", pages.job_types, name="job_types"),
        Route("/logs", pages.logs, name="logs"),
        Route("/tasks", pages.tasks, name="tasks"),
        Route("/api/tasks", pages.api_tasks, name="api_tasks"),
        Route("/api/job", pages.api_job, name="api_job"),
        Route("/metrics", pages.metrics, name="metrics"),
        Route("/login", pages.login, methods=["GET", "POST"], name="login"),
        Route("/logout", pages.logout, methods=["POST"], name="logout"),
        Route("/actions/job", pages.job_action, methods=["POST"], name="job_action"),
        Route("/actions/purge-failed", pages.purge, methods=["POST"], name="purge"),
        Route("/actions/job-type", pages.job_type_action, methods=["POST"], name="job_type"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]


def create_app(bench_path: str | Path | None = None, *, require_auth: bool = False) -> Starlette:
    """The dashboard of the bench at ``bench_path`` (else found like the CLI finds it).

    ``require_auth``: demand a login (``dashboard_password_hash`` or ``dashboard_token`` in
    common_site_config.json); ``jobbench dashboard`` turns it on whenever --host is not a
    loopback address.
    """
    bench = find_bench(str(bench_path) if bench_path is not None else None)
    dash = Dashboard(bench, require_auth)
    app = Starlette(
        routes=_routes(dash),
        middleware=[Middleware(AuthMiddleware, dashboard=dash)],
        exception_handlers={JobbenchError: _jobbench_error},
    )
    app.state.dashboard = dash
    return app


async def _jobbench_error(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"Error: {exc}", 400)


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await run_in_threadpool(fn, *args, **kwargs)
