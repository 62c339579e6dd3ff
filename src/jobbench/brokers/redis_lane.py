"""The Redis broker's fast lane: scripts sent on a connection of the calling thread's own.

Every broker call is one Lua script, and most of a script call's CPU in the client was redis-py's
per-command machinery, not the round trip: taking a connection from the pool and giving it back
(a lock and a fork check each way), the retry wrapper, event dispatch, and encoding each argument
in Python (an enqueue sends ~30). Measured on one process against a local Redis, one EVALSHA with
33 arguments: 125-140 µs of CPU through ``Script.__call__``, 50 µs packed by hiredis and sent on
a held connection. The lane does the latter; it is the same protocol and the same reply, so the
broker's code above it does not change.

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

    def __init__(self, client: Any) -> None:
        pool = client.connection_pool
        self._make = pool.connection_class
        self._kwargs = pool.connection_kwargs
        self._local = threading.local()
        self._open: weakref.WeakSet[Any] = weakref.WeakSet()

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

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA ``script``; loads it first when the server does not know it (NOSCRIPT)."""
        assert pack_command is not None
        conn = self._connection()
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return self._call(conn, command)
        except redis.exceptions.NoScriptError:  # a restarted or flushed server
            self._call(conn, ("SCRIPT", "LOAD", script.script))
            return self._call(conn, command)

    def after_blpop(
        self,
        wake: Sequence[str],
        block: float,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
    ) -> Any:
        """BLPOP ``wake`` for up to ``block`` seconds and EVALSHA ``script`` behind it, sent
        in one write: a blocked client's next command waits in the server until the BLPOP
        returns, then runs at once. Returns the script's reply (the BLPOP's is dropped)."""
        assert pack_command is not None
        conn = self._connection()
        blpop = ("BLPOP", *wake, f"{block:.3f}")
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            conn.send_packed_command([pack_command(blpop) + pack_command(command)])
            try:
                conn.read_response()
            except redis.exceptions.ResponseError:  # (an ACL refusal): read both replies
                with contextlib.suppress(redis.exceptions.ResponseError):
                    conn.read_response()
                raise
            return conn.read_response()
        except redis.exceptions.NoScriptError:  # the BLPOP ran; the script was not known
            self._call(conn, ("SCRIPT", "LOAD", script.script))
            return self._call(conn, command)
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
