"""Redis servers a test starts itself on free loopback ports: a plain one (for ACL users or
``requirepass``), one speaking TLS only (certificates made here with the ``openssl`` CLI), a
3-master Cluster, and a master + replica watched by three sentinels (the installed
``redis-server`` run with ``--sentinel``).

Each server is a child process of the test, with its files under the test's tmp_path; the
caller stops them (``stop_all``). Without ``redis-server`` (or ``redis-cli``/``openssl`` where
needed) the test skips with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ports import free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
MASTER_SERVICE = "jbmaster"


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        reason = f"{', '.join(missing)} not on PATH"
        if IN_CI:
            pytest.fail(f"{reason}; CI must run the Redis cluster-member tests (.ci/run)")
        pytest.skip(reason)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port below 55535 whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port < 55535 and _bindable(port + 10000):
            return port


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Server:
    """One redis-server process (a data node or a sentinel)."""

    dir: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    sentinel: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(
        self, extra: list[str] | None = None, ping_kwargs: dict[str, Any] | None = None
    ) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        base = [str(self.dir / "sentinel.conf"), "--sentinel"] if self.sentinel else []
        cmd = ["redis-server", *base, "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", str(self.dir),
               "--protected-mode", "no", *self.args, *(extra or [])]  # fmt: skip
        if not self.sentinel:  # a replica (re)joining syncs at once, not after 5 s
            cmd += ["--repl-diskless-sync-delay", "0"]
        with (self.dir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.client(**(ping_kwargs or {})).ping(), 15, f"redis on {self.port}")
        except BaseException:
            self.kill()  # never leave a server behind a failed start
            raise

    def client(self, **kwargs: Any) -> Any:
        import redis

        kwargs.setdefault("socket_timeout", 2)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def stop_all(servers: list[Server]) -> None:
    for server in servers:
        server.kill(signal.SIGTERM)


# -- TLS ----------------------------------------------------------------------------------------
def make_certs(folder: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the
    CA (``openssl``). Returns the paths by role."""
    require_tools("openssl")
    folder.mkdir(parents=True, exist_ok=True)
    names = ("ca.key", "ca.crt", "server.key", "server.crt", "client.key", "client.crt")
    p = {name: str(folder / name) for name in names}
    run = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
           "-keyout", p["ca.key"], "-out", p["ca.crt"], "-subj", "/CN=jb test CA"]  # fmt: skip
    subprocess.run(run, check=True, capture_output=True)
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who in ("server", "client"):
        csr = str(folder / f"{who}.csr")
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        p[f"{who}.key"], "-out", csr, "-subj", f"/CN={who}"],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", p["ca.crt"], "-CAkey",
                        p["ca.key"], "-CAcreateserial", "-days", "2", "-out", p[f"{who}.crt"],
                        "-extfile", str(ext)], check=True, capture_output=True)  # fmt: skip
    return p


def tls_server(folder: Path, certs: dict[str, str]) -> Server:
    """A server on a TLS port only (no plain port), asking clients for a certificate."""
    server = Server(folder, [])
    port = server.port
    server.args = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", certs["server.crt"],
                   "--tls-key-file", certs["server.key"], "--tls-ca-cert-file", certs["ca.crt"],
                   "--tls-auth-clients", "yes"]  # fmt: skip
    tls = {"ssl": True, "ssl_ca_certs": certs["ca.crt"], "ssl_certfile": certs["client.crt"],
           "ssl_keyfile": certs["client.key"]}  # fmt: skip
    server.start(ping_kwargs=tls)
    return server


# -- Cluster ------------------------------------------------------------------------------------
def start_cluster(folder: Path, masters: int = 3) -> list[Server]:
    """``masters`` nodes with cluster mode on, joined by ``redis-cli --cluster create``."""
    require_tools("redis-server", "redis-cli")
    nodes = [Server(folder / f"node{i}", [], port=cluster_port()) for i in range(masters)]
    try:
        return _join_cluster(nodes)
    except BaseException:
        stop_all(nodes)  # the caller gets no nodes to stop
        raise


def _join_cluster(nodes: list[Server]) -> list[Server]:
    for node in nodes:
        node.args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "2000"]  # fmt: skip
        node.start()
    addrs = [f"127.0.0.1:{node.port}" for node in nodes]
    subprocess.run(["redis-cli", "--cluster", "create", *addrs, "--cluster-yes"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip

    def ready() -> bool:
        return all(
            b"cluster_state:ok" in n.client().execute_command("CLUSTER", "INFO") for n in nodes
        )

    wait_for(ready, 30, "cluster_state:ok on every node")
    return nodes


# -- Sentinel -----------------------------------------------------------------------------------
def start_sentinels(folder: Path, down_after_ms: int = 500) -> tuple[Server, Server, list[Server]]:
    """A master, one replica of it and three sentinels monitoring MASTER_SERVICE (quorum 2)."""
    require_tools("redis-server")
    master = Server(folder / "master", [])
    replica = Server(folder / "replica", [])
    sentinels = [Server(folder / f"sentinel{i}", [], sentinel=True) for i in range(3)]
    try:
        _watch(master, replica, sentinels, down_after_ms)
    except BaseException:
        stop_all([master, replica, *sentinels])  # the caller gets no servers to stop
        raise
    return master, replica, sentinels


def _watch(master: Server, replica: Server, sentinels: list[Server], down_after_ms: int) -> None:
    master.start()
    replica.args = ["--replicaof", "127.0.0.1", str(master.port)]
    replica.start()
    wait_for(lambda: replicating(replica), 15, "the replica to sync")
    for s in sentinels:
        s.dir.mkdir(parents=True, exist_ok=True)
        (s.dir / "sentinel.conf").write_text(
            f"sentinel monitor {MASTER_SERVICE} 127.0.0.1 {master.port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_SERVICE} {down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_SERVICE} 5000\n"
            f"sentinel parallel-syncs {MASTER_SERVICE} 1\n"
        )
        s.start()

    def all_see_each_other() -> bool:
        for s in sentinels:
            fields = s.client().execute_command("SENTINEL", "MASTER", MASTER_SERVICE)  # a dict
            if int(fields[b"num-other-sentinels"]) < 2 or int(fields[b"num-slaves"]) < 1:
                return False
        return True

    wait_for(all_see_each_other, 30, "three sentinels that know each other and the replica")


def replicating(server: Server) -> bool:
    return bool(server.client().info("replication").get("master_link_status") == "up")


def sentinel_master_port(sentinels: list[Server]) -> int:
    """The master's port as the sentinels now report it."""
    reply = (
        sentinels[0].client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_SERVICE)
    )
    return int(reply[1])
