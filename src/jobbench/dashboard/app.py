"""The dashboard ASGI app: ``create_app(bench_path)`` returns a Starlette app that can be served
by uvicorn (``jobbench dashboard``) or mounted in a user's Starlette/FastAPI app::

    app.mount("/jobs-admin", create_app("/path/to/bench", require_auth=True,
                                        allowed_hosts=["jobs.example.com"]))

Reads go through ``jobbench.inspect.Inspector`` (see ``data``); actions through the public job
and document API (see ``actions``). Every request first passes ``GuardMiddleware``: the Host
must be an allowed name and a POST must come from the dashboard's own origin (see ``guard``).
With ``require_auth`` (or ``dashboard_require_auth``) every route but /login and /static
answers 401 (or redirects browsers to /login) until the visitor logs in; every
cookie-authenticated POST needs the session's CSRF token whatever the mode. Creating the app
refuses (InsecureConfigError) a missing or short ``secret_key`` or a short ``dashboard_token``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
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
from jobbench.dashboard.auth import (
    COOKIE,
    FLASH_COOKIE,
    Credentials,
    LogoutEpoch,
    Session,
    Signer,
    check_settings,
)
from jobbench.dashboard.guard import (
    allowed_hosts,
    host_of,
    origin_refusal,
    own_origin,
    secure_headers,
)
from jobbench.dashboard.throttle import LoginThrottle
from jobbench.dashboard.timefmt import Zones, duration, when
from jobbench.errors import JobbenchError
from jobbench.inspect import Inspector

HERE = Path(__file__).parent
EPOCH_FILE = ".dashboard_logout_epoch"  # under sites/, beside common_site_config.json
log = logging.getLogger("jobbench.dashboard")


class Dashboard:
    """State shared by the routes of one app: the bench, its Inspector, signer, templates."""

    def __init__(
        self,
        bench: Bench,
        require_auth: bool,
        hosts: Iterable[str] | None = None,
        listen_host: str | None = None,
    ) -> None:
        conf = bench.common_config()
        check_settings(conf, str(bench.path))
        self.bench = bench
        self.require_auth = require_auth or bool(conf.get("dashboard_require_auth"))
        self.allowed_hosts = allowed_hosts(conf, hosts, listen_host)
        self.inspector = Inspector(bench)
        self.signer = Signer(str(conf.secret_key))
        self.epoch = LogoutEpoch(bench.sites_path / EPOCH_FILE)
        self.throttle = LoginThrottle()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["tojson_pretty"] = _pretty
        self.templates.env.filters["pct"] = percent
        self.templates.env.filters["duration"] = duration
        self.zones = Zones(bench)
        self.templates.env.globals["when"] = self._when

    def _when(self, value: Any, site: str | None = None) -> Markup:
        """A timestamp in the display zone; a naive datetime is read in ``site``'s zone."""
        zone = self.zones.display()
        return when(value, zone, self.zones.of(site) if site else zone)

    def credentials(self) -> Credentials:
        return Credentials.of(self.bench.common_config())

    # -- sessions ---------------------------------------------------------------------------
    def binding(self) -> str:
        """What a logged-in session is valid for: these credentials, this logout epoch."""
        return f"{self.credentials().fingerprint()}|{self.epoch.current()}"

    def load_session(self, cookie: str | None) -> Session | None:
        return self.signer.load(cookie, self.binding())

    def dump_session(self, session: Session) -> str:
        return self.signer.dump(session, self.binding())

    def flash(self, request: Request, response: Response, kind: str, text: str) -> None:
        """Show ``text`` as a banner on the next page this browser renders."""
        value = self.signer.dump_flash(request.state.session, kind, text)
        _set_cookie(request, response, value, FLASH_COOKIE)

    # -- rendering --------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        name: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> Response:
        session: Session | None = getattr(request.state, "session", None)
        context.setdefault("problems", [])
        context.update(
            base=_base(request),
            csrf_token=self.signer.csrf_token(session) if session else "",
            logged_in=bool(session and session.logged_in),
            require_auth=self.require_auth,
            flash=self.signer.load_flash(session, request.cookies.get(FLASH_COOKIE)),
            sites=self.bench.list_sites(),
            zone=self.zones.display(),
        )
        response = self.templates.TemplateResponse(
            request, name, context, status_code=status, headers=headers
        )
        if FLASH_COOKIE in request.cookies:  # shown once
            response.delete_cookie(FLASH_COOKIE, path=_base(request) or "/")
        return response

    def error_page(
        self, request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A refusal: an HTML page for browsers, one line of text for everything else."""
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        if "text/html" not in request.headers.get("accept", ""):
            return PlainTextResponse(f"{title}: {detail}", status, headers=headers)
        context = {"page": "error", "title": title, "detail": detail, "code": status}
        try:
            return self.render(request, "error.html", status, headers, **context)
        except Exception:  # the page itself failed (say, an unreadable sites folder)
            log.exception("cannot render the error page")
            return PlainTextResponse(f"{title}: {detail}", status, headers=headers)

    async def form(self, request: Request) -> dict[str, str]:
        """The POSTed form, refused with 403 unless it carries the session's CSRF token (or
        the request carries the bearer token: API clients, which no other site can forge)."""
        return (await self.form_lists(request))[0]

    async def form_lists(self, request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
        """``form()``, and every field's values (a bulk form repeats ``job``)."""
        form = await request.form()
        fields = {k: str(v) for k, v in form.items()}
        lists = {k: [str(v) for v in form.getlist(k)] for k in form}
        if self.credentials().check_bearer(request.headers.get("authorization")):
            return fields, lists
        token = fields.get("csrf_token") or request.headers.get("x-csrf-token")
        if not self.signer.check_csrf(request.state.session, token):
            raise HTTPException(403, "missing or invalid CSRF token; reload the page and retry")
        return fields, lists


def percent(value: Any) -> float | None:
    """A progress value for display (0-100, one decimal), None for anything unreadable."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return round(min(100.0, max(0.0, number)), 1) if math.isfinite(number) else None


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)


def _base(request: Request) -> str:
    """The app's mount prefix ('' at the root), as it was before routing reached a Mount."""
    base = getattr(request.state, "base", None)
    return base if base is not None else str(request.scope.get("root_path", "")).rstrip("/")


def _path(request: Request) -> str:
    """The request path inside this app (without the mount prefix)."""
    path = request.url.path
    base = _base(request)
    return path[len(base) :] if base and path.startswith(base) else path


class GuardMiddleware(BaseHTTPMiddleware):
    """Host check, origin check, session, login; security headers on every answer."""

    def __init__(self, app: Any, dashboard: Dashboard) -> None:
        super().__init__(app)
        self.dashboard = dashboard

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        # Taken now: routing rewrites the scope's root_path in place (a Mount adds its prefix).
        path, request.state.base = _path(request), _base(request)
        response = self._refusal(request) or await self._serve(request, call_next)
        return secure_headers(response, path)

    def _refusal(self, request: Request) -> Response | None:
        dash = self.dashboard
        host = host_of(request.headers.get("host"))
        if host is None or host not in dash.allowed_hosts:
            shown = (host or request.headers.get("host") or "")[:100]
            return dash.error_page(
                request,
                400,
                f"this dashboard does not answer to the host name {shown!r}; if that name is "
                "yours, add it to dashboard_allowed_hosts in common_site_config.json",
            )
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        bearer = dash.credentials().check_bearer(request.headers.get("authorization"))
        own = own_origin(request.url.scheme, request.headers.get("host"))
        reason = origin_refusal(request.method, request.headers, own, dash.allowed_hosts, bearer)
        if reason is None:
            return None
        return dash.error_page(request, 403, f"refused {reason}")

    async def _serve(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        dash = self.dashboard
        session = dash.load_session(request.cookies.get(COOKIE))
        fresh = session is None  # none, forged, expired, or revoked (logout, new password)
        request.state.session = session = session or dash.signer.new_session()
        if dash.require_auth and not self._allowed(request, session):
            response = self._unauthenticated(request)
        else:
            response = await call_next(request)
        own = any(v.startswith(f"{COOKIE}=") for v in response.headers.getlist("set-cookie"))
        if fresh and not own:
            _set_cookie(request, response, dash.dump_session(session))
        return response

    def _allowed(self, request: Request, session: Session) -> bool:
        path = _path(request)
        if path == "/login" or path.startswith("/static/") or session.logged_in:
            return True
        return self.dashboard.credentials().check_bearer(request.headers.get("authorization"))

    def _unauthenticated(self, request: Request) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            query = request.url.query
            target = quote(_path(request) + (f"?{query}" if query else ""))
            return RedirectResponse(f"{_base(request)}/login?next={target}", 303)
        return PlainTextResponse(
            "authentication required", 401, headers={"WWW-Authenticate": "Bearer"}
        )


def _set_cookie(request: Request, response: Response, value: str, name: str = COOKIE) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=_base(request) or "/",
    )


def safe_next(target: str | None) -> str:
    """A path inside this app to go to after a form, never another site: browsers read
    ``//evil`` and ``/\\evil`` as a host, and control characters can split it."""
    if not target or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return "/"
    if "\\" in target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return "/"
    return target


def _redirect(request: Request, fields: Mapping[str, str]) -> Response:
    return RedirectResponse(f"{_base(request)}{safe_next(fields.get('next'))}", 303)


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
        Route("/actions/bulk", pages.bulk_action, methods=["POST"], name="bulk"),
        Route("/actions/retry-failed", pages.retry_failed, methods=["POST"], name="retry_failed"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]


def create_app(
    bench_path: str | Path | None = None,
    *,
    require_auth: bool = False,
    allowed_hosts: Iterable[str] | None = None,
    listen_host: str | None = None,
) -> Starlette:
    """The dashboard of the bench at ``bench_path`` (else found like the CLI finds it).

    ``require_auth``: demand a login (``dashboard_password_hash`` or ``dashboard_token`` in
    common_site_config.json); ``jobbench dashboard`` turns it on whenever --host is not a
    loopback address, and ``dashboard_require_auth: true`` turns it on always.
    ``allowed_hosts``: the Host names served (default ``dashboard_allowed_hosts``, else the
    loopback names, ``dashboard_host`` and ``listen_host`` unless they are wildcards).
    """
    bench = find_bench(str(bench_path) if bench_path is not None else None)
    dash = Dashboard(bench, require_auth, allowed_hosts, listen_host)
    app = Starlette(
        routes=_routes(dash),
        middleware=[Middleware(GuardMiddleware, dashboard=dash)],
        exception_handlers=_handlers(dash),
    )
    app.state.dashboard = dash
    return app


def _handlers(dash: Dashboard) -> dict[Any, Callable[..., Any]]:
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return dash.error_page(request, exc.status_code, str(exc.detail), exc.headers)

    async def jobbench_error(request: Request, exc: Exception) -> Response:
        return dash.error_page(request, 400, f"Error: {exc}")

    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette answers this one outside the middleware: add the headers here.
        page = dash.error_page(request, 500, "the dashboard failed; see its log for the error")
        return secure_headers(page, _path(request))

    return {HTTPException: http_error, JobbenchError: jobbench_error, Exception: server_error}


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await run_in_threadpool(fn, *args, **kwargs)
