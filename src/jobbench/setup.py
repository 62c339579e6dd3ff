"""The processes a bench runs, derived from its config, and their supervisor/systemd files.

Worker groups follow Frappe's bench: ``short,default`` and ``long,default,short`` with
``background_workers`` processes each, plus one group per custom queue of ``workers`` with its
own ``background_workers``. A group's stop timeout is the longest default timeout of its queues
plus ``STOP_MARGIN``: a warm shutdown lets the current job finish, and the worker's own hard
deadline (timeout + 3 s) ends it in any case, so the process manager never needs to SIGKILL a
worker that is behaving.

Every value written into a unit or supervisor file is checked first, and nothing is written when
one is refused: the user must be a plain user name that exists here and is not root (unless
``allow_root``), and paths may hold only letters, digits and ``_ . / + : @ , = ~ -``. A newline
would add a directive (``ExecStartPre=``), a space would split a command, ``%`` and ``$`` are
expanded by systemd and ``%`` by supervisor.
"""

from __future__ import annotations

import os
import pwd
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobbench.bench import Bench
from jobbench.errors import ConfigError
from jobbench.jobs.queues import queue_timeouts

STOP_MARGIN = 60  # seconds beyond the longest queue timeout (Frappe: 360 s for 300 s queues)
SCHEDULER_STOP_TIMEOUT = 30
STANDARD_GROUPS: tuple[tuple[str, ...], ...] = (("short", "default"), ("long", "default", "short"))


@dataclass(frozen=True)
class WorkerGroup:
    name: str  # e.g. "short,default"; used in log prefixes and program names
    queues: tuple[str, ...]
    count: int
    stop_timeout: int  # seconds

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_]+", "-", "-".join(self.queues))


def worker_groups(conf: dict[str, Any]) -> list[WorkerGroup]:
    """The worker groups the config asks for."""
    timeouts = queue_timeouts(conf)
    count = int(conf.get("background_workers") or 1)
    groups: list[tuple[tuple[str, ...], int]] = [(q, count) for q in STANDARD_GROUPS]
    for name, spec in (conf.get("workers") or {}).items():
        groups.append(((name,), int((spec or {}).get("background_workers") or 1)))
    return [
        WorkerGroup(",".join(q), q, n, max(_timeout(timeouts[x]) for x in q) + STOP_MARGIN)
        for q, n in groups
    ]


def _timeout(seconds: int) -> int:
    """A queue without a timeout (-1) still gets a finite stop timeout: a day."""
    return seconds if seconds >= 0 else 24 * 3600


# POSIX-style user names (useradd's default rule, plus '.', which systemd's User= accepts):
# a full match, so no newline, space, '%' or '=' can reach the file.
USER_NAME_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?\Z")
SAFE_PATH_CHARS = frozenset("_./+:@,=~-")


def service_user(user: str | None, allow_root: bool = False) -> str:
    """The user the processes run as: ``user``, else the one running this. Refuse a name that
    is not a plain user name or not known here, and root (uid 0) unless ``allow_root``."""
    name = user if user is not None else pwd.getpwuid(os.geteuid()).pw_name
    if not USER_NAME_RE.fullmatch(name):
        raise ConfigError(
            f"--user {name!r} is not a user name (lowercase letters, digits, '_', '.', '-')"
        )
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        raise ConfigError(
            f"--user {name!r}: no such user on this system; create it first"
        ) from None
    if uid == 0 and not allow_root:
        how = f"--user {name}" if user is not None else "you are running this as root"
        raise ConfigError(
            f"refusing to write units that run as root ({how}): jobs would run with every "
            "privilege; pass --user NAME for an unprivileged user, or --allow-root"
        )
    return name


def check_path(label: str, value: str) -> str:
    """``value`` unchanged if every character is safe in both file formats, else ConfigError."""
    bad = [ch for ch in value if not (ch.isalnum() or ch in SAFE_PATH_CHARS)]
    if bad or not value:
        what = f"the character {bad[0]!r}" if bad else "nothing"
        raise ConfigError(
            f"{label} {value!r} holds {what}, which cannot go into a unit file safely; "
            "use a path of letters, digits and _ . / + : @ , = ~ -"
        )
    return value


def jobbench_command(bench: Bench) -> str:
    """How process managers run jobbench for this bench (this interpreter, absolute paths)."""
    python = check_path("the Python interpreter", sys.executable)
    return f"{python} -m jobbench --bench {check_path('the bench folder', str(bench.path))}"


def _checked_groups(bench: Bench) -> list[WorkerGroup]:
    """The worker groups, each queue name checked like a path (config reading checks them too,
    but a unit file is no place to rely on that)."""
    groups = worker_groups(bench.common_config())
    for group in groups:
        for queue in group.queues:
            check_path("queue name", queue)
    return groups


def bench_slug(bench: Bench) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "-", Path(bench.path).resolve().name) or "bench"


# -- supervisor -----------------------------------------------------------------------------
def supervisor_config(bench: Bench, user: str | None = None, allow_root: bool = False) -> str:
    groups = _checked_groups(bench)  # the config first: a broken one is the first thing to fix
    user = service_user(user, allow_root)
    slug = bench_slug(bench)
    cmd = jobbench_command(bench)
    logs = Path(bench.path) / "logs"
    sections = [
        _program(
            f"{slug}-schedule", f"{cmd} schedule", 1, SCHEDULER_STOP_TIMEOUT, bench, user, logs
        )
    ]
    names = [f"{slug}-schedule"]
    for group in groups:
        name = f"{slug}-worker-{group.slug}"
        command = f"{cmd} worker --queue {','.join(group.queues)}"
        sections.append(_program(name, command, group.count, group.stop_timeout, bench, user, logs))
        names.append(name)
    sections.append(f"[group:{slug}]\nprograms={','.join(names)}\n")
    header = "; Generated by `jobbench setup supervisor`; run it again after changing config.\n"
    return header + "\n".join(sections)


def _program(
    name: str, command: str, count: int, stop: int, bench: Bench, user: str, logs: Path
) -> str:
    lines = [
        f"[program:{name}]",
        f"command={command}",
        f"directory={bench.path}",
        f"user={user}",
        "priority=4",
        "autostart=true",
        "autorestart=true",
        "stopsignal=TERM",
        f"stopwaitsecs={stop}",
        "killasgroup=true",
        "stopasgroup=false",
        f"stdout_logfile={logs}/{name}.log",
        f"stderr_logfile={logs}/{name}.error.log",
    ]
    if count > 1:
        lines += [f"numprocs={count}", "process_name=%(program_name)s-%(process_num)d"]
    return "\n".join(lines) + "\n"


# -- systemd --------------------------------------------------------------------------------
def systemd_units(
    bench: Bench, user: str | None = None, allow_root: bool = False
) -> dict[str, str]:
    """File name -> unit text: one scheduler service, one template per worker group (start
    ``background_workers`` instances of it), and a target that wants them all."""
    groups = _checked_groups(bench)
    user = service_user(user, allow_root)
    slug = bench_slug(bench)
    cmd = jobbench_command(bench)
    units = {
        f"{slug}-schedule.service": _service(
            f"jobbench scheduler of {bench.path}",
            f"{cmd} schedule",
            SCHEDULER_STOP_TIMEOUT,
            bench,
            user,
            slug,
        )
    }
    wants = [f"{slug}-schedule.service"]
    for group in groups:
        name = f"{slug}-worker-{group.slug}"
        units[f"{name}@.service"] = _service(
            f"jobbench worker {group.name} %i of {bench.path}",
            f"{cmd} worker --queue {','.join(group.queues)}",
            group.stop_timeout,
            bench,
            user,
            slug,
        )
        wants += [f"{name}@{i}.service" for i in range(1, group.count + 1)]
    units[f"{slug}.target"] = (
        "# Generated by `jobbench setup systemd`; run it again after changing config.\n"
        f"[Unit]\nDescription=jobbench processes of {bench.path}\nWants={' '.join(wants)}\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    return units


def _service(description: str, command: str, stop: int, bench: Bench, user: str, slug: str) -> str:
    return (
        "# Generated by `jobbench setup systemd`; run it again after changing config.\n"
        f"[Unit]\nDescription={description}\nPartOf={slug}.target\nAfter=network.target\n\n"
        f"[Service]\nType=simple\nUser={user}\nWorkingDirectory={bench.path}\n"
        f"ExecStart={command}\nRestart=always\nRestartSec=2\n"
        "KillSignal=SIGTERM\nKillMode=mixed\n"
        f"TimeoutStopSec={stop}\n\n"
        f"[Install]\nWantedBy={slug}.target\n"
    )


def write_supervisor(bench: Bench, user: str | None = None, allow_root: bool = False) -> list[Path]:
    target = Path(bench.path) / "config" / "supervisor.conf"
    text = supervisor_config(bench, user, allow_root)  # every check before anything is written
    target.parent.mkdir(parents=True, exist_ok=True)
    (Path(bench.path) / "logs").mkdir(exist_ok=True)
    target.write_text(text)
    return [target]


def write_systemd(bench: Bench, user: str | None = None, allow_root: bool = False) -> list[Path]:
    units = systemd_units(bench, user, allow_root)  # every check before anything is written
    folder = Path(bench.path) / "config" / "systemd"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        (folder / name).write_text(text)
        written.append(folder / name)
    return written
