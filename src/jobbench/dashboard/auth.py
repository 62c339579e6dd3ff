"""Dashboard login, sessions, CSRF tokens and the settings the dashboard refuses to run without.

Password hash format (config key ``dashboard_password_hash``)::

    pbkdf2_sha256$<iterations>$<salt>$<hex digest>

the digest being ``hashlib.pbkdf2_hmac("sha256", password, salt, iterations).hex()`` with the
salt used as UTF-8 text. ``jobbench dashboard set-password`` writes one. ``dashboard_token`` is
a plain shared secret of at least ``MIN_TOKEN_CHARS`` characters (``jobbench dashboard
generate-token`` writes one): it is accepted at the login form and as ``Authorization: Bearer``.

Sessions: the cookie ``jobbench_session`` holds ``nonce.user.expires.signature`` where the
signature is HMAC-SHA256 (bench ``secret_key``, at least ``MIN_SECRET_BYTES``) over the rest.
Every visitor gets one (with an empty user when not logged in). A logged-in session's signature
also covers a *binding*: a fingerprint of the current password hash and token, and the bench's
logout epoch (``LogoutEpoch``). Changing the password or token, or logging out anywhere, changes
the binding, so every logged-in cookie stops verifying: there is no session table to forget.
The CSRF token of a session is HMAC-SHA256 over ``csrf|nonce``; every cookie-authenticated POST
must carry it (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobbench.errors import ConfigError, InsecureConfigError
from jobbench.jobs.trust import secret_of

SCHEME = "pbkdf2_sha256"
ITERATIONS = 260_000
COOKIE = "jobbench_session"
FLASH_COOKIE = "jobbench_flash"
SESSION_SECONDS = 12 * 3600
LOGGED_IN = "admin"
MIN_TOKEN_CHARS = 32
FLASH_KINDS = ("ok", "bad")
FIX_TOKEN = (
    "run 'jobbench dashboard generate-token --replace' to store a random one, or set a "
    f"dashboard_token of at least {MIN_TOKEN_CHARS} characters in common_site_config.json"
)


def hash_password(password: str, salt: str | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{SCHEME}${iterations}${salt}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, iterations, salt, expected = encoded.split("$", 3)
        rounds = int(iterations)
    except ValueError:
        return False
    if scheme != SCHEME or rounds < 1:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds)
    return hmac.compare_digest(digest.hex(), expected)


def generate_token() -> str:
    """A random dashboard token (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- settings the dashboard refuses to start without ---------------------------------------------
def check_settings(conf: Mapping[str, Any], where: str = "this bench") -> None:
    """Raise InsecureConfigError (one line, with the fix) for a missing or short ``secret_key``
    or a ``dashboard_token`` shorter than MIN_TOKEN_CHARS."""
    secret_of(conf, f"the dashboard of {where}")  # the rule every signer follows
    token = conf.get("dashboard_token")
    if token is not None and len(str(token)) < MIN_TOKEN_CHARS:
        raise InsecureConfigError(
            f"the dashboard of {where} refuses a dashboard_token of {len(str(token))} "
            f"characters (at least {MIN_TOKEN_CHARS} are required); {FIX_TOKEN}"
        )


def needs_login(conf: Mapping[str, Any], host: str) -> bool:
    """Off loopback, or with ``dashboard_require_auth`` (behind a reverse proxy, every visitor
    arrives from loopback, so the listen address says nothing about who they are)."""
    return not is_loopback(host) or bool(conf.get("dashboard_require_auth"))


def check_startup(conf: Mapping[str, Any], host: str, where: str = "this bench") -> None:
    """Everything ``jobbench dashboard --host HOST`` refuses to start with, as one error."""
    check_settings(conf, where)
    if needs_login(conf, host) and not Credentials.of(conf).configured:
        reason = (
            "dashboard_require_auth is set"
            if is_loopback(host)
            else f"--host {host} is not a loopback address"
        )
        raise ConfigError(
            f"{reason}, so the dashboard needs a login: run 'jobbench dashboard set-password' "
            "or 'jobbench dashboard generate-token'"
        )


# -- sessions ------------------------------------------------------------------------------------
@dataclass
class Session:
    nonce: str
    user: str
    expires: int

    @property
    def logged_in(self) -> bool:
        return self.user == LOGGED_IN and self.expires > time.time()


class Signer:
    """Signs session cookies and flash messages and derives CSRF tokens with the secret key."""

    def __init__(self, secret: str) -> None:
        self._key = secret_of({"secret_key": secret}, "the dashboard").encode()

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, user: str = "") -> Session:
        return Session(secrets.token_hex(16), user, int(time.time()) + SESSION_SECONDS)

    def _session_signature(self, nonce: str, user: str, expires: str, binding: str) -> str:
        # Anonymous sessions are not bound: a logout elsewhere must not break the CSRF token
        # of a login form someone has open.
        return self._sign(f"session|{nonce}.{user}.{expires}|{binding if user else ''}")

    def dump(self, session: Session, binding: str = "") -> str:
        body = f"{session.nonce}.{session.user}.{session.expires}"
        signature = self._session_signature(
            session.nonce, session.user, str(session.expires), binding
        )
        return f"{body}.{signature}"

    def load(self, cookie: str | None, binding: str = "") -> Session | None:
        if not cookie:
            return None
        parts = cookie.split(".")
        if len(parts) != 4:
            return None
        nonce, user, expires, signature = parts
        expected = self._session_signature(nonce, user, expires, binding)
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            session = Session(nonce, user, int(expires))
        except ValueError:
            return None
        return session if session.expires > time.time() else None

    def csrf_token(self, session: Session) -> str:
        return self._sign(f"csrf|{session.nonce}")

    def check_csrf(self, session: Session | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session), token)

    # A banner message for the next page, in a cookie of its own, signed and tied to the
    # session's nonce: the text cannot come from a link someone else made (the old ?msg=).
    def dump_flash(self, session: Session, kind: str, text: str) -> str:
        encoded = base64.urlsafe_b64encode(text[:300].encode()).decode().rstrip("=")
        return f"{kind}.{encoded}.{self._sign(f'flash|{session.nonce}|{kind}|{encoded}')}"

    def load_flash(self, session: Session | None, cookie: str | None) -> tuple[str, str] | None:
        parts = (cookie or "").split(".")
        if session is None or len(parts) != 3 or parts[0] not in FLASH_KINDS:
            return None
        kind, encoded, signature = parts
        expected = self._sign(f"flash|{session.nonce}|{kind}|{encoded}")
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except ValueError:
            return None
        return kind, text


class LogoutEpoch:
    """A per-bench value in a small file; logging out replaces it, which ends every logged-in
    session of the bench (all dashboard processes read the same file, restarts keep it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: tuple[tuple[int, int, int], str] | None = None

    def current(self) -> str:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return "0"
        version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if self._cache is None or self._cache[0] != version:
            # An unreadable file raises: failing closed beats accepting every old cookie.
            self._cache = (version, self.path.read_text(encoding="ascii").strip())
        return self._cache[1]

    def bump(self) -> None:
        """Write a new random epoch atomically (temp file, fsync, rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-epoch-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(16) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class Credentials:
    password_hash: str | None
    token: str | None

    @classmethod
    def of(cls, conf: Mapping[str, Any]) -> Credentials:
        hashed, token = conf.get("dashboard_password_hash"), conf.get("dashboard_token")
        return cls(str(hashed) if hashed else None, str(token) if token else None)

    @property
    def usable_token(self) -> str | None:
        """The token, unless it is too short to resist guessing (then it opens nothing)."""
        token = self.token
        return token if token and len(token) >= MIN_TOKEN_CHARS else None

    @property
    def configured(self) -> bool:
        return bool(self.password_hash or self.usable_token)

    def fingerprint(self) -> str:
        """Changes whenever the password hash or the token does (part of a session's binding)."""
        material = f"{self.password_hash or ''}\0{self.token or ''}".encode()
        return hashlib.sha256(material).hexdigest()[:32]

    def check(self, secret: str) -> bool:
        """A password (against the hash) or the token. The pbkdf2 work is the expensive part:
        callers check the login throttle first."""
        if not secret:
            return False
        token = self.usable_token
        if token and hmac.compare_digest(secret.encode(), token.encode()):
            return True
        return bool(self.password_hash) and verify_password(secret, str(self.password_hash))

    def check_bearer(self, header: str | None) -> bool:
        token = self.usable_token
        if not token or not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
