"""Hosts on one machine, for the chaos tests that cross a network: network namespaces joined by
veth pairs to a bridge in the root namespace, and servers (Redis, PostgreSQL) the test starts on the
bridge's address, so a process in a namespace reaches them only over its own link.

Cutting a host's link (``Hosts.cut``) sets its bridge-side veth down: packets are dropped, not
refused, so the host's TCP connections hang as they would behind a failed switch or cable.
Needs root and iproute2 (``ip``); the test skips with the reason otherwise (fails under CI).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import IN_CI  # tests/conftest.py


def require_netns() -> None:
    """Skip (locally) or fail (CI) when this process cannot make network namespaces."""
    reason = None
    if os.geteuid() != 0:
        reason = "network namespaces need root"
    elif shutil.which("ip") is None:
        reason = "iproute2's `ip` is not installed"
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason}; CI runs as root with iproute2 (.ci/run installs it)")
        pytest.skip(reason)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class Hosts:
    """A bridge at ``<net>.1`` and one namespace per host at ``<net>.<10+i>``."""

    tag: str
    net: str
    names: list[str] = field(default_factory=list)

    @property
    def bridge_ip(self) -> str:
        return f"{self.net}.1"

    def ns(self, i: int) -> str:
        return f"jb{self.tag}h{i}"

    def _peer(self, i: int) -> str:
        return f"jb{self.tag}p{i}"  # the bridge's end of host i's link (names ≤ 15 chars)

    def add(self, i: int) -> str:
        ns, peer, inner = self.ns(i), self._peer(i), f"jb{self.tag}i{i}"
        _ip("netns", "add", ns)
        self.names.append(ns)
        _ip("link", "add", inner, "type", "veth", "peer", "name", peer)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", peer, "master", f"jb{self.tag}br", "up")
        _ip("-n", ns, "addr", "add", f"{self.net}.{10 + i}/24", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def cut(self, i: int) -> None:
        _ip("link", "set", self._peer(i), "down")

    def mend(self, i: int) -> None:
        _ip("link", "set", self._peer(i), "up")

    def command(self, i: int, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(i), *argv]


@contextlib.contextmanager
def hosts(count: int) -> Iterator[Hosts]:
    """A bridge and ``count`` hosts on a /24 of 10.x.y.0 picked at random; all removed after."""
    require_netns()
    tag = secrets.token_hex(2)
    net = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    made = Hosts(tag, net)
    bridge = f"jb{tag}br"
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{made.bridge_ip}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i in range(count):
            made.add(i)
        yield made
    finally:
        for ns in made.names:  # deleting a namespace deletes its veth pair too
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_port(host: str, port: int, what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not answer on {host}:{port} within {timeout} s")


@contextlib.contextmanager
def redis_server(host: str) -> Iterator[str]:
    """A throwaway redis-server on ``host``; yields its URL."""
    port = free_port(host)
    cmd = ["redis-server", "--bind", host, "--port", str(port), "--save", "", "--appendonly"]
    # protected mode refuses non-loopback clients without a password; this server is reachable
    # only from the test's own bridge
    cmd += ["no", "--protected-mode", "no"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(host, port, "redis-server")
        yield f"redis://{host}:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        if IN_CI:
            pytest.fail("PostgreSQL's server binaries are not installed")
        pytest.skip("PostgreSQL's server binaries (initdb) are not installed")
    return found[-1].parent


@contextlib.contextmanager
def postgres_server(host: str) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on ``host`` (trust auth, run as the postgres user, as
    PostgreSQL refuses root); yields a URL without a database name. Its folder is a fresh one
    under /tmp of its own: pytest's tmp_path is private to root."""
    bindir, port = _pg_bin(), free_port(host)
    data = Path(tempfile.mkdtemp(prefix="jobbench-pg-"))
    shutil.chown(data, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_pg, str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with (data / "pg_hba.conf").open("a") as hba:  # the hosts come from the bridge's subnet
        hba.write("host all all 0.0.0.0/0 trust\n")
    server = [str(bindir / "postgres"), "-D", str(data), "-h", host, "-p", str(port)]
    proc = subprocess.Popen(
        [*as_pg, *server, "-k", str(data), "-c", "fsync=off"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(host, port, "PostgreSQL")
        yield f"postgresql://postgres@{host}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)
