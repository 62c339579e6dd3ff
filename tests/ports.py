"""A free loopback port, for a server a test starts itself (or for a URL nothing listens on:
connections to it are refused at once). tests/ is on the import path (its conftest.py)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
