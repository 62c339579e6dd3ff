"""``jobbench start``: the scheduler and every worker the config asks for, in the foreground.

Each child is a ``jobbench schedule`` or ``jobbench worker --queue ...`` process of this very
interpreter (so it is exactly what supervisor/systemd would run), in its own session: a
terminal's Ctrl-C reaches only this parent, which forwards one SIGTERM per signal it gets
(the first asks for a warm shutdown, a second for a cold one). The kernel sends each child
SIGTERM if this parent dies (PR_SET_PDEATHSIG). A child that exits while we are not stopping
is started again (after a pause that grows while it keeps dying young). Children's output is
read from pipes in one loop and printed with a coloured ``name |`` prefix.

The dashboard (``jobbench dashboard --host H --port P``, from the config keys
``dashboard_host`` (default 127.0.0.1) and ``dashboard_port`` (default 8000; 0 leaves it out))
is one more child when the ``dashboard`` extra is installed, and when the settings it refuses
to start with (a short ``secret_key`` or ``dashboard_token``, no login off loopback) are not
there. Otherwise it is left out and ``start`` says so in one line, ``not started: dashboard
(<why>)``, instead of starting it to watch it die over and over (or saying nothing).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

from jobbench import logs
from jobbench.bench import Bench
from jobbench.setup import worker_groups
from jobbench.worker.spec import die_with_parent

COLOURS = ["36", "33", "32", "35", "34", "91", "92", "93", "94", "95", "96"]
YOUNG = 5.0  # a child that dies younger than this is restarted after a growing pause
MAX_PAUSE = 10.0
DASHBOARD_PORT = 8000


@dataclass
class Child:
    name: str
    argv: list[str]
    colour: str
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    pause: float = 0.5
    buffer: bytes = field(default=b"")


def plan(bench: Bench, log_format: str | None = None) -> list[Child]:
    """The children ``start`` runs for this bench (``log_format``: their --log-format)."""
    base = [sys.executable, "-m", "jobbench", "--bench", str(bench.path)]
    logged = ["--log-format", log_format] if log_format else []
    entries = [("scheduler", [*base, "schedule", *logged])]
    for group in worker_groups(bench.common_config()):
        for i in range(1, group.count + 1):
            argv = [*base, "worker", "--queue", ",".join(group.queues), *logged]
            entries.append((f"worker.{group.name}.{i}", argv))
    dashboard = _dashboard_argv(bench)
    if dashboard:
        entries.append(("dashboard", [*base, *dashboard]))
    return [Child(n, a, COLOURS[i % len(COLOURS)]) for i, (n, a) in enumerate(entries)]


def _dashboard_argv(bench: Bench) -> list[str] | None:
    """``dashboard --host H --port P`` unless disabled, or it could not start."""
    conf = bench.common_config()
    port = conf.get("dashboard_port", DASHBOARD_PORT)
    if port in (0, "0", None) or dashboard_problem(bench) is not None:
        return None
    host = str(conf.get("dashboard_host") or "127.0.0.1")
    return ["dashboard", "--host", host, "--port", str(port)]


DASHBOARD_MODULES = ("starlette", "jinja2", "uvicorn")


def dashboard_problem(bench: Bench) -> str | None:
    """Why the dashboard is left out of ``start`` (its extra is missing, or ``jobbench
    dashboard`` would refuse this config), or None; not when ``dashboard_port`` is 0."""
    import importlib.util

    from jobbench.dashboard.auth import check_startup
    from jobbench.errors import ConfigError

    conf = bench.common_config()
    port = conf.get("dashboard_port", DASHBOARD_PORT)
    if port in (0, "0", None):
        return None
    missing = [m for m in DASHBOARD_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return (
            f"not started: dashboard (the dashboard extra is not installed: no "
            f"{', '.join(missing)}; pip install 'jobbench[dashboard]', or set dashboard_port "
            "to 0 to leave it out)"
        )
    try:
        check_startup(conf, str(conf.get("dashboard_host") or "127.0.0.1"), str(bench.path))
    except ConfigError as exc:
        return f"not started: dashboard ({exc})"
    return None


def _child_setup(parent: int) -> None:
    os.setsid()
    die_with_parent(signal.SIGTERM, parent)  # leaves at once if ``parent`` died meanwhile


class Starter:
    def __init__(
        self,
        bench: Bench,
        colour: bool | None = None,
        out: IO[str] | None = None,
        log_format: str | None = None,
    ):
        self.bench = bench
        self.out = out or sys.stdout
        self.colour = self.out.isatty() and not os.environ.get("NO_COLOR")
        if colour is not None:
            self.colour = colour
        # json: the children's lines pass through as they are (one object each, no prefix);
        # ours, and any line of a child that is not JSON, become objects naming the process.
        self.json = logs.log_format(bench.common_config(), log_format) == "json"
        self.children = plan(bench, log_format)
        self.width = max(len(c.name) for c in self.children)
        self.stopping = 0
        self.signals: list[int] = []
        self.selector = selectors.DefaultSelector()

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        names = ", ".join(c.name for c in self.children)
        self.say("start", f"starting {len(self.children)} processes for {self.bench.path}: {names}")
        if note := dashboard_problem(self.bench):
            self.say("start", note)
        for child in self.children:
            if child.name == "dashboard":  # argv ends with --host H --port P
                host, port = child.argv[-3], child.argv[-1]
                host = f"[{host}]" if ":" in host else host  # an IPv6 address
                self.say("start", f"dashboard at http://{host}:{port}/")
        for child in self.children:
            self._spawn(child)
        while any(c.proc is not None for c in self.children) or not self.stopping:
            self._pump(0.2)
            self._handle_signals()
            self._reap()
            self._restart_due()
        self.say("start", "all processes stopped")
        return 0

    # -- children ---------------------------------------------------------------------------
    def _spawn(self, child: Child) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            child.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(self.bench.path),
            env=env,
            # (single-threaded parent)
            preexec_fn=functools.partial(_child_setup, os.getpid()),  # noqa: PLW1509
        )
        child.proc, child.started, child.restart_at, child.buffer = proc, time.time(), None, b""
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        self.selector.register(proc.stdout, selectors.EVENT_READ, child)

    def _reap(self) -> None:
        for child in self.children:
            proc = child.proc
            if proc is None or proc.poll() is None:
                continue
            self._drain(child, final=True)
            child.proc = None
            self.say(child.name, f"exited ({_describe(proc.returncode)})")
            if self.stopping:
                continue
            young = time.time() - child.started < YOUNG
            child.pause = min(MAX_PAUSE, child.pause * 2) if young else 0.5
            child.restart_at = time.time() + child.pause
            self.say(child.name, f"restarting in {child.pause:g} s")

    def _restart_due(self) -> None:
        if self.stopping:
            return
        now = time.time()
        for child in self.children:
            if child.proc is None and child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)  # acted on by the main loop: no I/O in a signal handler

    def _handle_signals(self) -> None:
        while len(self.signals) > self.stopping:
            signum = self.signals[self.stopping]
            self.stopping += 1
            kind = "warm" if self.stopping == 1 else "cold"
            self.say("start", f"{signal.Signals(signum).name}: {kind} shutdown")
            self._forward()

    def _forward(self) -> None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)

    # -- output -----------------------------------------------------------------------------
    def _pump(self, timeout: float) -> None:
        try:
            events = self.selector.select(timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            return
        for key, _ in events:
            child: Child = key.data
            self._drain(child)

    def _drain(self, child: Child, final: bool = False) -> None:
        proc = child.proc
        if proc is None or proc.stdout is None:
            return
        with contextlib.suppress(BlockingIOError):
            while chunk := proc.stdout.read(65536):
                child.buffer += chunk
        *lines, child.buffer = child.buffer.split(b"\n")
        if final:
            lines += [child.buffer] if child.buffer else []
            child.buffer = b""
            self.selector.unregister(proc.stdout)
            proc.stdout.close()
        for line in lines:
            self.say(child.name, line.decode(errors="replace").rstrip("\r"), child.colour)

    def say(self, name: str, message: str, colour: str = "1") -> None:
        if self.json:
            self._say_json(name, message)
            return
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        self.out.write(f"{prefix} {message}\n")
        self.out.flush()

    def _say_json(self, name: str, message: str) -> None:
        if not (message.startswith("{") and message.endswith("}")):  # a child's JSON line
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
            logger = "jobbench.start" if name == "start" else "jobbench.start.child"
            data = {"ts": stamp, "level": "info", "logger": logger, "event": "log"}
            message = json.dumps({**data, "message": message, "process": name})
        self.out.write(message + "\n")
        self.out.flush()


def _describe(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
