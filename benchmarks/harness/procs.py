"""The processes the benchmarks start: each logs to a file, each ends with its children.

A process's tree is followed through /proc (pid and start time, so a reused pid is never
hit); every process is also started in a session of its own, and its process group is killed
too, which reaches children that were re-parented away from the tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from harness.common import BenchError, Command

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (field 3), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[tuple[int, str]]:
    """``pid`` and its descendants, each as (pid, start time)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))):
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if stat := _proc_stat(current):
            tree.append((current, stat[19]))
            todo.extend(children.get(current, []))
    return tree


def kill_tree(tree: list[tuple[int, str]]) -> None:
    """SIGKILL every process of a ``process_tree`` snapshot that is still that process."""
    for pid, started in tree:
        stat = _proc_stat(pid)
        if stat and stat[19] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def kill_group(pgid: int) -> None:
    """SIGKILL every process still in process group ``pgid`` (while a group has members its
    id is not handed to a new process, so this never reaches a stranger)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) and stat[2] == str(pgid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


def _smaps_kb(pid: int) -> tuple[int, int]:
    """(Rss, Pss) of one process in kB, from /proc/<pid>/smaps_rollup; (0, 0) if gone."""
    rss = pss = 0
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "Rss":
            rss = int(rest.split()[0])
        elif key == "Pss":
            pss = int(rest.split()[0])
    return rss, pss


def tree_memory_mb(pid: int) -> tuple[float, float, int]:
    """(PSS, RSS) of the process tree in MB, and how many processes it has. RSS counts a page
    shared by a parent and its forked child in both; PSS splits it between them."""
    pids = [p for p, _ in process_tree(pid)]
    sizes = [_smaps_kb(p) for p in pids]
    return sum(s[1] for s in sizes) / 1024, sum(s[0] for s in sizes) / 1024, len(pids)


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of the process tree, in seconds."""
    total = 0
    for p, _ in process_tree(pid):
        if stat := _proc_stat(p):
            total += int(stat[11]) + int(stat[12])
    return total / CLK_TCK


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


class Procs:
    """Every process the benchmarks start; ``kill_all`` ends whatever is left of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[subprocess.Popen[bytes], Path] = {}
        self.count = 0

    def start(self, command: Command) -> subprocess.Popen[bytes]:
        self.count += 1
        log = self.log_dir / f"process-{self.count}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command.argv,
                cwd=command.cwd,
                env={**os.environ, **command.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches this script only; it ends them all
            )
        self.running[proc] = log
        return proc

    def check_alive(self, procs: list[subprocess.Popen[bytes]], what: str) -> None:
        for proc in procs:
            if proc.poll() is not None:
                tail = log_tail(self.running.get(proc, Path("/nonexistent")))
                raise BenchError(f"{what} exited with code {proc.returncode}\n{tail}")

    def stop(self, procs: list[subprocess.Popen[bytes]], grace: float = 5.0) -> None:
        """SIGTERM (a warm shutdown) to each, then SIGKILL to whatever of their trees is left."""
        trees = {proc: process_tree(proc.pid) for proc in procs}
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + grace
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in procs:
            self._end(proc, trees[proc])

    def kill_all(self) -> None:
        for proc in list(self.running):
            self._end(proc, process_tree(proc.pid))

    def _end(self, proc: subprocess.Popen[bytes], tree: list[tuple[int, str]]) -> None:
        kill_tree(tree + process_tree(proc.pid))
        kill_group(proc.pid)  # started with a session of its own: its group id is its pid
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        self.running.pop(proc, None)
