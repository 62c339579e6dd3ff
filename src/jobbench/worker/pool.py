"""``jobbench worker-pool``: N workers under one parent that restarts any that die.

Apps are imported before forking, so the workers share those pages copy-on-write. Signals are
forwarded: the first SIGTERM/SIGINT asks every worker for a warm shutdown, the second for a
cold one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from types import FrameType

from jobbench.bench import Bench
from jobbench.jobs.trust import secret_of
from jobbench.worker.spec import die_with_parent
from jobbench.worker.worker import Worker

RESTART_PAUSE = 0.5
SCHEDULER_SLOT = -1


class WorkerPool:
    def __init__(
        self,
        bench: Bench,
        queues: list[str],
        num_workers: int = 2,
        strategy: str = "default",
        burst: bool = False,
        quiet: bool = False,
        with_scheduler: bool = False,
    ) -> None:
        secret_of(bench.common_config())  # refuse here, not once per forked worker
        self.bench = bench
        self.with_scheduler = with_scheduler
        self.queues = queues
        self.num_workers = max(1, num_workers)
        self.strategy = strategy
        self.burst = burst
        self.quiet = quiet
        self._children: dict[int, int] = {}  # pid -> slot
        self._stopping = 0

    def _start(self, slot: int) -> None:
        """Fork worker ``slot`` (or the scheduler, slot SCHEDULER_SLOT). Children get their
        own process group, so a terminal's Ctrl-C reaches only this parent, which forwards
        one SIGTERM per Ctrl-C (warm, then cold); they get SIGTERM if this parent dies."""
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setpgid(0, 0)
                die_with_parent(signal.SIGTERM, parent)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = self._child_main(slot)
            finally:
                os._exit(code)
        self._children[pid] = slot

    def _child_main(self, slot: int) -> int:
        if slot == SCHEDULER_SLOT:
            from jobbench.scheduler.scheduler import Scheduler
            from jobbench.worker.settle import dead_worker_reaper

            reaper = dead_worker_reaper(self.bench)
            return Scheduler(self.bench, quiet=self.quiet, reaper=reaper).run()
        return Worker(self.bench, self.queues, self.strategy, self.burst, self.quiet).work()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping += 1
        for pid in list(self._children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def run(self) -> int:
        self._preload()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self.num_workers):
            self._start(slot)
        if self.with_scheduler:
            self._start(SCHEDULER_SLOT)
        while self._children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in self._children:
                continue
            slot = self._children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if self._stopping or (self.burst and code == 0 and slot != SCHEDULER_SLOT):
                if self.burst and not self._workers_left():
                    self._on_signal(signal.SIGTERM, None)  # burst done: stop the scheduler too
                continue
            time.sleep(RESTART_PAUSE)
            self._start(slot)
        return 0

    def _workers_left(self) -> bool:
        return any(slot != SCHEDULER_SLOT for slot in self._children.values())

    def _preload(self) -> None:
        """Import the apps of every site now, so forked workers share them."""
        from jobbench.apps import collect_hooks

        self.bench.add_apps_dir_to_path()
        for site in self.bench.list_sites():
            with contextlib.suppress(Exception):
                collect_hooks(["jobbench", *self.bench.site_config(site).get("installed_apps", [])])
