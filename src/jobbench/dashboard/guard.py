"""What every request must pass before a route sees it, and what every response carries.

* **Host.** A page an operator visits can point its own domain at 127.0.0.1 (DNS rebinding)
  and then read the loopback dashboard as "same origin". The browser still sends the attacker's
  name in the Host header, so only names in the allowed list are served (``allowed_hosts``).
* **Origin.** A POST must come from the dashboard's own origin (Origin header, else Referer).
  A POST with neither is refused unless it carries the bearer token (API clients, which no
  browser page can make send that header). This is on top of the session's CSRF token.
* **Headers.** A CSP without inline script or style, no framing, no sniffing, a same-origin
  referrer, and ``Cache-Control: no-store`` on everything but the static files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import Response

from jobbench.dashboard.auth import is_loopback

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("", "0.0.0.0", "::", "[::]", "*")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def normalise_host(name: str) -> str:
    """``Example.COM.`` -> ``example.com``; ``[::1]`` -> ``::1``."""
    return name.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def allowed_hosts(
    conf: Mapping[str, Any], explicit: Iterable[str] | None = None, listen_host: str | None = None
) -> frozenset[str]:
    """``explicit`` (create_app's argument), else ``dashboard_allowed_hosts``, else the loopback
    names plus ``dashboard_host`` and the address being listened on, unless a wildcard."""
    configured = explicit if explicit is not None else conf.get("dashboard_allowed_hosts")
    if configured is not None:
        return frozenset(normalise_host(h) for h in configured)
    names = set(LOOPBACK_NAMES)
    for host in (conf.get("dashboard_host"), listen_host):
        if isinstance(host, str) and host.strip() not in WILDCARDS:
            names.add(normalise_host(host))
    return frozenset(names)


def split_host(header: str | None) -> tuple[str, int | None] | None:
    """A Host header as (name without brackets, port or None); None when malformed."""
    header = (header or "").strip()
    if header.startswith("["):
        end = header.find("]")
        name, rest = header[1:end], header[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    elif header.count(":") == 1:
        name, _, port = header.partition(":")
    else:
        name, port = header, ""
    if port and not port.isdigit():
        return None
    name = normalise_host(name)
    return (name, int(port) if port else None) if name else None


def host_of(header: str | None) -> str | None:
    """The name in a Host header without its port (``[::1]:8000`` -> ``::1``), or None."""
    split = split_host(header)
    return split[0] if split else None


def origin_refusal(
    method: str,
    headers: Mapping[str, str],
    own: tuple[str, str, int],
    allowed: frozenset[str],
    bearer_ok: bool,
) -> str | None:
    """Why a request is refused as cross-origin, or None. ``own`` is the request's scheme,
    host and port as the client addressed it."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return None
    source = headers.get("origin") or headers.get("referer")
    if not source:
        if bearer_ok:
            return None
        return "a POST without an Origin or Referer header (send one, or the bearer token)"
    parts = urlsplit(source)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return f"a POST from origin {source[:80]!r}"
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return f"a POST from origin {source[:80]!r}"
    theirs = (parts.scheme, normalise_host(parts.hostname), port)
    if theirs == own:
        return None
    # Behind a TLS proxy the app sees http and its own port while the browser says https://
    # name: a configured name is enough. Not for loopback names: other local services (a dev
    # server on another port) share them, and browsers treat those as other origins.
    if theirs[1] in allowed and not is_loopback(theirs[1]):
        return None
    return f"a POST from another origin ({parts.scheme}://{parts.netloc})"


def own_origin(scheme: str, host_header: str | None) -> tuple[str, str, int]:
    """The request's own origin as (scheme, host, port) from its Host header."""
    name, port = split_host(host_header) or ("", None)
    return scheme, name, port or DEFAULT_PORTS.get(scheme, 0)


def secure_headers(response: Response, path: str) -> Response:
    for name, value in HEADERS.items():
        response.headers[name] = value
    if not path.startswith("/static/"):
        # Job arguments, tracebacks and tokens in forms must not stay in caches.
        response.headers["Cache-Control"] = "no-store"
    return response
