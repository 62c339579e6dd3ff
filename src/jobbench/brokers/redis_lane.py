"""The Redis broker's fast lane: scripts sent on a connection of the calling thread's own.

Every broker call is one Lua script, and most of a script call's CPU in the client was redis-py's
per-command machinery, not the round trip: taking a connection from the pool and giving it back
(a lock and a fork check each way), the retry wrapper, event dispatch, and encoding each argument
in Python (an enqueue sends ~30). Measured on one process against a local Redis, one EVALSHA with
33 arguments: 125-140 µs of CPU through ``Script.__call__``, 50 µs packed by hiredis and sent on
a held connection. The lane does the latter; it is the same protocol and the same reply, so the
broker's code above it does not change.

On Redis 7 and later the lane calls the scripts as functions of one library (``FCALL``, the
library loaded on the first "function not found"): an ``EVALSHA`` has the server run the whole
common prelude of every script again, about 20 µs per call. An idle claimer's claim goes behind
its ``BLPOP`` in the same write (``after_blpop``).

It is used only for a plain server (no Sentinel, no Cluster, no WAIT for replicas): those keep
redis-py's full path, which knows how to find the master, route a slot or append a WAIT. A lane
call that meets a connection error drops its connection and raises; the broker then runs the
script once more on redis-py's full path, with its retry policy, as every call did before.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.commands.core import Script

pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command
except ImportError:  # pragma: no cover - jobbench[redis] installs redis[hiredis]
    pack_command = None


class Lane:
    """One connection per thread (and process), made from the client pool's settings."""

    def __init__(self, client: Any, library: tuple[str, str] | None = None) -> None:
        pool = client.connection_pool
        self._make = pool.connection_class
        self._kwargs = pool.connection_kwargs
        self._local = threading.local()
        self._open: weakref.WeakSet[Any] = weakref.WeakSet()
        # (function prefix, library source): scripts go as FCALL until the server shows it
        # cannot take the library (Redis < 7, or an ACL without FUNCTION), then as EVALSHA.
        self._library = library

    @staticmethod
    def usable(client: Any) -> bool:
        """Whether the lane can serve this client: a plain redis.Redis on a plain pool (not
        Sentinel's, whose connections look the master up), and hiredis present."""
        return (
            pack_command is not None
            and type(client) is redis.Redis
            and type(client.connection_pool) is redis.ConnectionPool
        )

    def _connection(self) -> Any:
        held = getattr(self._local, "held", None)
        if held is None or held[0] != os.getpid():  # a forked child never shares a socket
            conn = self._make(**self._kwargs)
            self._local.held = held = (os.getpid(), conn)
            self._open.add(conn)
        return held[1]

    def run(self, name: str, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Script ``name``: FCALL of the library's function, or EVALSHA ``script``; the
        library or the script is loaded first when the server does not know it."""
        conn = self._connection()
        command = self._command(name, script, keys, args)
        try:
            return self._call(conn, command)
        except redis.exceptions.ResponseError as exc:
            return self._recover(conn, exc, name, script, keys, args)

    def _command(
        self, name: str, script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> tuple[Any, ...]:
        if self._library is not None:
            return ("FCALL", self._library[0] + name, len(keys), *keys, *args)
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def _recover(
        self,
        conn: Any,
        exc: redis.exceptions.ResponseError,
        name: str,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
    ) -> Any:
        """After a call the server refused for want of the code: load it, call again. Any
        other error is the script's own and goes up as it is."""
        if isinstance(exc, redis.exceptions.NoScriptError):  # a restarted or flushed server
            self._call(conn, ("SCRIPT", "LOAD", script.script))
        elif self._library is not None and "function not found" in str(exc).lower():
            self._load_library(conn)
        elif self._library is not None and _refuses_fcall(exc):
            self._library = None  # a server before Redis 7, or a user allowed EVALSHA only
        else:
            raise exc
        if self._library is None and not isinstance(exc, redis.exceptions.NoScriptError):
            return self.run(name, script, keys, args)  # now as EVALSHA (NOSCRIPT handled)
        return self._call(conn, self._command(name, script, keys, args))

    def _load_library(self, conn: Any) -> None:
        assert self._library is not None
        try:
            self._call(conn, ("FUNCTION", "LOAD", "REPLACE", self._library[1]))
        except redis.exceptions.ResponseError:  # no FUNCTION here (version, ACL): EVALSHA
            self._library = None

    def after_blpop(
        self,
        wake: Sequence[str],
        block: float,
        name: str,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
    ) -> Any:
        """BLPOP ``wake`` for up to ``block`` seconds and script ``name`` behind it, sent
        in one write: a blocked client's next command waits in the server until the BLPOP
        returns, then runs at once. Returns the script's reply (the BLPOP's is dropped)."""
        assert pack_command is not None
        conn = self._connection()
        blpop = ("BLPOP", *wake, f"{block:.3f}")
        command = self._command(name, script, keys, args)
        try:
            conn.send_packed_command([pack_command(blpop) + pack_command(command)])
            try:
                conn.read_response()
            except redis.exceptions.ResponseError:  # (an ACL refusal): read both replies
                with contextlib.suppress(redis.exceptions.ResponseError):
                    conn.read_response()
                raise
            try:
                return conn.read_response()
            except redis.exceptions.ResponseError as exc:  # the BLPOP ran; the code was not known
                return self._recover(conn, exc, name, script, keys, args)
        except redis.exceptions.ResponseError:
            raise  # both replies were read: the connection is in step
        except BaseException:  # a lost link, a timeout, a signal handler's exception
            conn.disconnect()  # a reply may still be on its way: never read it as the next one
            raise

    @staticmethod
    def _call(conn: Any, command: tuple[Any, ...]) -> Any:
        assert pack_command is not None
        try:
            conn.send_packed_command([pack_command(command)])
            return conn.read_response()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            conn.disconnect()  # a reply may still be on its way: never read it as the next one
            raise
        except TypeError as exc:  # an argument hiredis cannot pack (redis-py says DataError)
            raise redis.exceptions.DataError(str(exc)) from exc

    def close(self) -> None:
        """Close every thread's connection (each reconnects on its next call)."""
        for conn in list(self._open):
            conn.disconnect()


def _refuses_fcall(exc: redis.exceptions.ResponseError) -> bool:
    """The server does not know FCALL, or the user may not run it (not: a key refused)."""
    text = str(exc).lower()
    return "unknown command" in text or (
        isinstance(exc, redis.exceptions.NoPermissionError) and "'fcall'" in text
    )
