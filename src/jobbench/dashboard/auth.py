"""Dashboard login, sessions and CSRF tokens.

Password hash format (config key ``dashboard_password_hash``)::

    pbkdf2_sha256$<iterations>$<salt>$<hex digest>

the digest being ``hashlib.pbkdf2_hmac("sha256", password, salt, iterations).hex()`` with the
salt used as UTF-8 text. ``jobbench dashboard set-password`` writes one. ``dashboard_token`` is
a plain shared secret: it is accepted at the login form and as ``Authorization: Bearer TOKEN``.

Sessions: the cookie ``jobbench_session`` holds ``nonce.user.expires.signature`` where the
signature is HMAC-SHA256 (bench ``secret_key``) over the rest. Every visitor gets one (with an
empty user when not logged in). The CSRF token of a session is HMAC-SHA256 over ``csrf|nonce``;
every POST must carry it (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass

SCHEME = "pbkdf2_sha256"
ITERATIONS = 260_000
COOKIE = "jobbench_session"
SESSION_SECONDS = 12 * 3600
LOGGED_IN = "admin"


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


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Session:
    nonce: str
    user: str
    expires: int

    @property
    def logged_in(self) -> bool:
        return self.user == LOGGED_IN and self.expires > time.time()


class Signer:
    """Signs session cookies and derives CSRF tokens with the bench's secret key."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the dashboard needs the bench's secret_key")
        self._key = secret.encode()

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, user: str = "") -> Session:
        return Session(secrets.token_hex(16), user, int(time.time()) + SESSION_SECONDS)

    def dump(self, session: Session) -> str:
        body = f"{session.nonce}.{session.user}.{session.expires}"
        return f"{body}.{self._sign('session|' + body)}"

    def load(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        parts = cookie.split(".")
        if len(parts) != 4:
            return None
        nonce, user, expires, signature = parts
        if not hmac.compare_digest(self._sign(f"session|{nonce}.{user}.{expires}"), signature):
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


@dataclass
class Credentials:
    password_hash: str | None
    token: str | None

    @property
    def configured(self) -> bool:
        return bool(self.password_hash or self.token)

    def check(self, secret: str) -> bool:
        """A password (against the hash) or the token."""
        if not secret:
            return False
        if self.token and hmac.compare_digest(secret.encode(), self.token.encode()):
            return True
        return bool(self.password_hash) and verify_password(secret, str(self.password_hash))

    def check_bearer(self, header: str | None) -> bool:
        if not self.token or not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())
