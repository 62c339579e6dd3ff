"""Login throttling: a few free failures per client, then exponential backoff (HTTP 429).

Each login attempt costs a pbkdf2 computation (tens of milliseconds of CPU) and can be made by
anyone who can reach the login form, so attempts are counted *before* that work is done, both
per client and over all clients (a global cap against guesses spread over many addresses).
After ``limit`` failures within ``window`` seconds the next attempt must wait ``base`` seconds,
then twice that after each further failure, up to ``cap``. A success clears its client.

An attempt is counted as a failure when it is let through (and forgiven on success), so a burst
of parallel requests cannot all pass the check before the first of them has failed.

Counters live in the process: each dashboard process throttles on its own. Behind a reverse
proxy the client is the proxy unless uvicorn is told to trust its X-Forwarded-For (it does by
default for a proxy on 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

GLOBAL = "*"


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass(frozen=True)
class Limits:
    per_client: int = 5
    globally: int = 100
    window: float = 3600.0  # failures older than this (since the last one) are forgotten
    base: float = 1.0
    cap: float = 900.0
    max_clients: int = 10_000  # memory bound: past it, the stalest clients are forgotten


def client_key(host: str | None) -> str:
    """The throttled unit: an IPv4 address, or an IPv6 /64 (one host usually owns a /64)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class LoginThrottle:
    def __init__(
        self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or Limits()
        self.clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now). Counts nothing."""
        with self._lock:
            return self._wait(client, self.clock())

    def attempt(self, client: str) -> float:
        """Let one attempt through and count it as a failure (0), or return the seconds to wait.

        The check and the count are one step, so concurrent attempts cannot overtake it."""
        with self._lock:
            now = self.clock()
            wait = self._wait(client, now)
            if wait > 0:
                return wait
            for key in (client, GLOBAL):
                record = self._failures.setdefault(key, _Failures())
                record.count, record.last = record.count + 1, now
            self._prune(now)
            return 0.0

    def succeeded(self, client: str) -> None:
        """The attempt let through was right: forget the client's failures, forgive one global."""
        with self._lock:
            self._failures.pop(client, None)
            record = self._failures.get(GLOBAL)
            if record is not None and record.count > 0:
                record.count -= 1

    def _wait(self, client: str, now: float) -> float:
        limits = self.limits
        return max(
            self._delay(self._failures.get(client), limits.per_client, now),
            self._delay(self._failures.get(GLOBAL), limits.globally, now),
        )

    def _delay(self, record: _Failures | None, limit: int, now: float) -> float:
        if record is None or now - record.last > self.limits.window or record.count < limit:
            return 0.0
        backoff = min(self.limits.cap, self.limits.base * 2.0 ** min(record.count - limit, 32))
        return max(0.0, record.last + backoff - now)

    def _prune(self, now: float) -> None:
        if len(self._failures) <= self.limits.max_clients:
            return
        window = self.limits.window
        for key in [k for k, r in self._failures.items() if now - r.last > window]:
            del self._failures[key]
        if len(self._failures) > self.limits.max_clients:
            stalest = sorted(self._failures, key=lambda k: self._failures[k].last)
            for key in stalest[: len(stalest) // 2]:
                if key != GLOBAL:
                    del self._failures[key]
