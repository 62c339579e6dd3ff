"""The worker: a small supervising parent around one long-lived executor child.

The parent never runs job code. It keeps the worker's heartbeat (with the current job) in the
broker, enforces each job's hard deadline (timeout + a short grace, then ``killpg`` of the
executor's process group), turns an executor's death into a failed job, relays stop requests,
and does the broker's housekeeping (promote retries that are due, reap jobs of dead workers,
drop expired records). Shutdown: the first SIGTERM/SIGINT is warm (finish the current job,
then exit), the second is cold (stop the job now; it ends ``stopped``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import select
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from types import FrameType
from typing import Any

from jobbench import logs
from jobbench.bench import Bench
from jobbench.brokers.base import WorkerInfo
from jobbench.brokers.factory import get_broker, retention
from jobbench.brokers.liveness import liveness as liveness
from jobbench.brokers.liveness import reap_interval as reap_interval
from jobbench.errors import BrokerError
from jobbench.jobs.record import JobRecord
from jobbench.jobs.trust import secret_of
from jobbench.worker.joblog import job_end, settled_detail
from jobbench.worker.spec import ExecutorConfig, die_with_parent

LOG = logs.get_logger("worker")
WARN = logging.WARNING
HARD_GRACE = 3.0
HELD_REASON = (
    "interrupted: the executor that claimed this job in a batch ended before it started it; "
    "it was put back at the head of its queue"
)
HOUSEKEEPING_INTERVAL = 1.0
CLEANUP_INTERVAL = 60.0
RESPAWN_PAUSE = 0.5


@dataclass
class Running:
    job_id: str
    method: str
    queue: str
    timeout: int
    started: float
    hard_deadline: float | None
    stop_sent: bool = False
    kill_reason: str | None = None  # set when we killed the executor on purpose
    kill_status: str = "failed"


def queue_concurrency(conf: dict[str, Any], queues: list[str]) -> int:
    """Sync jobs at once for a worker of ``queues`` without ``--concurrency``: the largest
    ``concurrency`` the ``workers`` config gives one of them, else 1."""
    specs = conf.get("workers") or {}
    return max([int(specs.get(q, {}).get("concurrency") or 1) for q in queues] or [1])


def _wake(_signum: int, _frame: FrameType | None) -> None:
    """SIGCHLD: nothing to do here; the wakeup fd already woke the main loop."""


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Worker:
    """``jobbench worker``: consume ``queues`` until told to stop (or empty, with burst)."""

    def __init__(
        self,
        bench: Bench,
        queues: list[str],
        strategy: str = "default",
        burst: bool = False,
        quiet: bool = False,
        name: str | None = None,
        heartbeat_interval: float | None = None,
        heartbeat_ttl: float | None = None,
        concurrency: int | None = None,
        async_concurrency: int | None = None,
        async_mode: str | None = None,
    ) -> None:
        self.bench = bench
        self.conf = bench.common_config()
        secret_of(self.conf)  # fail closed: no worker runs without a secret to check records
        self.broker = get_broker(bench, self.conf)
        self.keep = retention(self.conf)
        host = socket.gethostname()
        name = name or f"{host}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.info = WorkerInfo(name=name, pid=os.getpid(), host=host, queues=list(queues))
        self.cfg = ExecutorConfig(
            str(bench.path),
            name,
            list(queues),
            strategy,
            burst,
            concurrency or queue_concurrency(self.conf, queues),
            async_concurrency or int(self.conf.get("async_concurrency") or 0) or 10,
            async_mode or str(self.conf.get("async_mode") or "thread"),
        )
        self.quiet = quiet
        self.heartbeat_interval, self.heartbeat_ttl = liveness(
            self.conf, heartbeat_interval, heartbeat_ttl
        )
        self._pid: int | None = None
        self._pipe: int | None = None
        self._ctrl: int | None = None  # stop requests to the executor: a job id per line
        self._buffer = b""
        self._running: dict[str, Running] = {}  # what the executor runs, by job id
        self._waiting: dict[str, str] = {}  # claimed, waiting for the main thread: id -> queue
        self._stopping = 0  # 0 running, 1 warm shutdown asked, 2 cold
        self._done = False
        self._beat_job: str | None = None  # the current job as of the last heartbeat
        self._cold_deadline: float | None = None  # set by the second stop signal
        self._next = {"heartbeat": 0.0, "housekeeping": 0.0, "reap": 0.0, "cleanup": 0.0}
        self._unsettled: tuple[list[Running], int] | None = None  # see _settle_pending

    @property
    def name(self) -> str:
        return self.info.name

    # -- main loop ----------------------------------------------------------------------------
    def work(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        previous = signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # A handler (even a no-op) makes SIGCHLD write to the wakeup fd, so the loop notices
        # an executor's exit at once instead of at the next timeout.
        signal.signal(signal.SIGCHLD, _wake)
        logs.ensure_handler()
        self.log(f"Worker {self.name} started, queues: {', '.join(self.info.queues)}")
        try:
            self._heartbeat(force=True)
            self._before_first_claim()
            while not self._done:
                if self._pid is None and self._settle_pending():
                    self._spawn()
                self._wait(wake_r)
                self._check_executor()
                self._enforce_deadline()
                self._periodic()
        finally:
            self._shutdown_executor()
            signal.set_wakeup_fd(previous)
            self.broker.unregister_worker(self.name)
            for fd in (wake_r, wake_w):
                os.close(fd)
        self.log(
            f"Worker {self.name} stopped ({self.info.successful} finished, "
            f"{self.info.failed} failed)"
        )
        return 0

    def _before_first_claim(self) -> None:
        """Settle jobs of dead workers, then queue the retries that are due (theirs included):
        a burst worker claims at once and leaves when its queues look empty."""
        from jobbench.worker.settle import reap_dead

        reap_dead(self.broker, self.bench, self.keep)
        self.broker.promote_due()

    def _spawn(self) -> None:
        read_fd, write_fd = os.pipe()
        ctrl_r, ctrl_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # keep the collector from touching (and so copying) the shared pages
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the executor
            die_with_parent(signal.SIGKILL, parent)  # before the imports: a window otherwise
            os.close(read_fd)
            os.close(ctrl_w)
            code = 1
            try:
                # Imported only here, after the fork: the parent never loads what runs jobs.
                from jobbench.worker.executor import executor_main

                code = executor_main(self.cfg, write_fd, ctrl_r)
            except BaseException:  # noqa: BLE001 - report and leave without parent cleanup
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(write_fd)
        os.close(ctrl_r)
        os.set_blocking(ctrl_w, False)
        self._close_ctrl()
        self._pid, self._pipe, self._ctrl, self._buffer = pid, read_fd, ctrl_w, b""
        if self._stopping:
            os.kill(pid, signal.SIGUSR2)

    def _wait(self, wake_fd: int) -> None:
        fds = [wake_fd] + ([self._pipe] if self._pipe is not None else [])
        readable, _, _ = select.select(fds, [], [], self._wait_time())
        if wake_fd in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_fd, 512)
        if self._pipe is not None and self._pipe in readable:
            self._read_events()

    def _wait_time(self) -> float:
        now = time.monotonic()
        until = min(self._next["heartbeat"], self._next["housekeeping"])
        for running in self._running.values():
            if running.hard_deadline is not None:
                until = min(until, running.hard_deadline)
        return max(0.0, min(until - now, 1.0))

    def _read_events(self) -> None:
        assert self._pipe is not None
        chunk = os.read(self._pipe, 65536)
        if not chunk:
            os.close(self._pipe)
            self._pipe = None
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        with logs.batch():  # one write to stdout for the whole batch of lines
            for line in lines:  # a batch of events (worker/executor.py, _Teller)
                for kind, job_id, extra in json.loads(line):
                    if kind == "S":
                        self._job_started(job_id, extra)
                    elif kind == "W":
                        self._waiting[job_id] = str(extra)  # its queue
                    else:
                        self._job_ended(job_id, extra)

    def _job_started(self, job_id: str, extra: list[Any]) -> None:
        timeout, method, queue = int(extra[0]), str(extra[1]), str(extra[2])
        now = float(extra[3]) if len(extra) > 3 else time.monotonic()  # when it really began
        deadline = now + timeout + HARD_GRACE if timeout > 0 else None
        self._waiting.pop(job_id, None)
        self._running[job_id] = Running(job_id, method, queue, timeout, now, deadline)
        self._show_running()
        if not self.quiet:
            fields = {"job_id": job_id, "method": method, "queue": queue}
            logs.emit(
                LOG, f"{queue}: {method} ({job_id}) started", event="job_start", fields=fields
            )

    def _current(self) -> str | None:
        """The job heartbeats show: the longest running one (the first reported)."""
        return next(iter(self._running), None)

    def _show_running(self) -> None:
        """State and current job, as heartbeats show them, from the jobs running now."""
        current = self._current()
        self.info.state, self.info.current_job = ("busy" if current else "idle"), current

    def _job_ended(self, job_id: str, detail: Any) -> None:
        running = self._running.pop(job_id, None)
        if running is not None:
            self.info.working_time += time.monotonic() - running.started
        status = str(detail[0] if isinstance(detail, list) else detail)
        if status == "finished":
            self.info.successful += 1
        else:
            self.info.failed += 1
        self._show_running()
        if not self.quiet:
            method, queue = (running.method, running.queue) if running else ("?", "?")
            started = running.started if running else None
            line, fields = job_end(job_id, method, queue, started, detail)
            level = logging.INFO if status == "finished" else logging.WARNING
            logs.emit(LOG, line, level, "job_end", fields)

    # -- failures the executor cannot report itself ---------------------------------------------
    def _check_executor(self) -> None:
        if self._pid is None:
            return
        pid, status = os.waitpid(self._pid, os.WNOHANG)
        if pid == 0:
            return
        if self._pipe is not None:  # drain what it said before dying
            while self._pipe is not None and select.select([self._pipe], [], [], 0)[0]:
                self._read_events()
            if self._pipe is not None:
                os.close(self._pipe)
                self._pipe = None
        self._pid = None
        self._close_ctrl()
        code = os.waitstatus_to_exitcode(status)
        self._unsettled = (list(self._running.values()), code)
        self._running = {}
        self._settle_pending()
        if code == 0 and (self.cfg.burst or self._stopping) or self._stopping:
            self._done = True
        elif code != 0:
            time.sleep(RESPAWN_PAUSE)  # no hot crash loop if the executor cannot start

    def _settle_pending(self) -> bool:
        """Settle what the last executor left behind (its running job, jobs it claimed but
        never reported). While the broker is unreachable this is retried before the next
        executor is spawned (it would claim under the same name): True once done."""
        if self._unsettled is None:
            return True
        lost, code = self._unsettled
        try:
            self._requeue_waiting()
            while lost:
                self._settle_lost(lost[0], code)
                lost = lost[1:]
                self._unsettled = (lost, code)
            self._settle_unreported(code)
        except BrokerError as exc:
            self.log(f"broker unavailable, settling the executor's jobs later: {exc}", WARN)
            return False
        self._unsettled = None
        return True

    def _settle_unreported(self, code: int) -> None:
        """Jobs the dead executor claimed but never reported (it died between the claim and
        its "S" line): still ``started`` under this live worker's name, so no reaper would
        ever take them. Settle them like the job it was known to run."""
        from jobbench.worker.settle import settle_job

        stopped = self._cold_deadline is not None
        reason = (
            "stopped: the worker was shut down (cold)"
            if stopped
            else f"worker died: the executor that claimed this job ended ({describe_exit(code)})"
        )
        for record in self._unreported():
            if record.held:  # claimed in a batch, never begun: it did not run
                self._requeue(record.id, record.queue, HELD_REASON)
                continue
            settle_job(
                self.broker, self.bench, self.keep, record.id, self.name, reason, stopped=stopped
            )

    def _unreported(self) -> list[JobRecord]:
        """Jobs the broker shows ``started`` by this worker that its executor never reported."""
        started = self.broker.find(status="started", limit=10_000)
        known = self._running.keys() | self._waiting.keys()
        return [r for r in started if r.worker == self.name and r.id not in known]

    def _requeue_waiting(self) -> None:
        """Jobs the dead executor claimed in a batch and never started (they waited behind a
        sync job of its own): back to the head of their queues, the reason recorded."""
        for job_id, queue in list(self._waiting.items()):
            self._requeue(job_id, queue, HELD_REASON)

    def _settle_lost(self, running: Running, code: int) -> None:
        from jobbench.worker.settle import settle_job

        self._running.pop(running.job_id, None)
        self.info.failed += 1
        self._show_running()
        reason = running.kill_reason or (
            f"worker died: the executor running this job ended ({describe_exit(code)})"
        )
        settle_job(
            self.broker,
            self.bench,
            self.keep,
            running.job_id,
            self.name,
            reason,
            stopped=running.kill_status == "stopped",
        )
        if not self.quiet:
            record = None
            with contextlib.suppress(BrokerError):  # only for the retry it got, if any
                record = self.broker.get(running.job_id)
            detail = settled_detail(running.kill_status, reason, record)
            r = running
            line, fields = job_end(r.job_id, r.method, r.queue, r.started, detail)
            logs.emit(LOG, line, WARN, "job_end", fields)

    def _enforce_deadline(self) -> None:
        cold = self._cold_deadline
        now = time.monotonic()
        if cold is not None and self._pid is not None and now >= cold:
            self._kill_executor()  # a cold shutdown waits HARD_GRACE at most, job or no job
            return
        overdue = [
            r
            for r in self._running.values()
            if r.hard_deadline is not None and now >= r.hard_deadline
        ]
        if not overdue or self._pid is None:
            return
        for running in overdue:
            if running.kill_reason is None:
                running.kill_reason = (
                    f"JobTimeoutException: job exceeded its timeout of {running.timeout} s and "
                    f"did not stop within {HARD_GRACE:.0f} s; the worker killed it (hard stop)"
                )
        self._kill_executor()

    def _kill_executor(self) -> None:
        if self._pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._pid, signal.SIGKILL)
        _, status = os.waitpid(self._pid, 0)
        self._pid_exit(status)

    def _pid_exit(self, status: int) -> None:
        """We killed the executor: settle the jobs we killed it for, and put the jobs that
        were cut off beside them back at the head of their queues (docs/reliability.md)."""
        # What it wrote before it died is still in the pipe: read it first, so every job it
        # reported is settled as what it was, not as "claimed but never reported".
        while self._pipe is not None and select.select([self._pipe], [], [], 0)[0]:
            self._read_events()
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        self._pid = None
        self._close_ctrl()
        code = os.waitstatus_to_exitcode(status)
        killed = [r for r in self._running.values() if r.kill_reason is not None]
        self._requeue_waiting()
        for running in killed:
            self._settle_lost(running, code)
        for running in list(self._running.values()):
            self._interrupted(running.job_id, running.queue, killed)
        if self._cold_deadline is not None:
            self._settle_unreported(code)  # shut down cold: their jobs stop, as the rest do
        else:  # jobs whose start line was still buffered were cut off the same way
            for record in self._unreported():
                self._interrupted(record.id, record.queue, killed)
        if self._stopping:
            self._done = True

    def _interrupted(self, job_id: str, queue: str, killed: list[Running]) -> None:
        """A job cut off by the kill meant for ``killed``: requeued at the head of its queue,
        the reason recorded; it runs again from the start."""
        why = ", ".join(f"{r.method} ({r.job_id})" for r in killed) or "another job"
        reason = (
            f"interrupted: the worker killed its executor to stop {why}; this job was "
            "running beside it and was put back at the head of its queue to run again"
        )
        self._requeue(job_id, queue, reason)

    def _requeue(self, job_id: str, queue: str, reason: str) -> None:
        """Back to the head of its queue with ``reason`` (broker.interrupt), its Background
        Task following; forgotten as running here, and as waiting once the broker took it
        (an outage leaves it waiting, for the next settling pass)."""
        from jobbench.jobs.tracking import sync_task

        self._running.pop(job_id, None)
        if self.broker.interrupt(job_id, self.name, reason):
            sync_task(self.broker, self.bench, job_id, reason)
        self._waiting.pop(job_id, None)
        self.log(f"{queue}: {job_id} requeued: {reason}", WARN)

    # -- stop requests, heartbeat, housekeeping -----------------------------------------------
    def _close_ctrl(self) -> None:
        if self._ctrl is not None:
            with contextlib.suppress(OSError):
                os.close(self._ctrl)
            self._ctrl = None

    def _signal_stop(self, job_ids: list[str]) -> None:
        """Tell the executor which jobs to stop ("*": all), then nudge it with SIGUSR1."""
        if self._pid is None:
            return
        if self._ctrl is not None:
            with contextlib.suppress(OSError):
                os.write(self._ctrl, b"".join(i.encode() + b"\n" for i in job_ids))
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGUSR1)

    def _request_stop(self, running: Running, reason: str, signal_it: bool = True) -> None:
        if running.stop_sent or self._pid is None:
            return
        running.stop_sent = True
        running.kill_reason, running.kill_status = reason, "stopped"
        running.hard_deadline = time.monotonic() + HARD_GRACE
        if signal_it:
            self._signal_stop([running.job_id])

    def _periodic(self) -> None:
        """Heartbeat and housekeeping. A broker outage is logged and retried on the next
        round (the executor backs off on its own); it never stops the supervisor."""
        try:
            self._housekeeping()
        except BrokerError as exc:
            self.log(f"broker unavailable, retrying: {exc}", WARN)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        self._heartbeat()
        if now >= self._next["housekeeping"]:
            self._next["housekeeping"] = now + HOUSEKEEPING_INTERVAL
            self.broker.promote_due()
            for running in list(self._running.values()):
                record = self.broker.get(running.job_id)
                if record is not None and record.stop_requested:
                    self._request_stop(running, "stopped on request (jobs stop)")
        if now >= self._next["reap"]:
            self._next["reap"] = now + reap_interval(self.heartbeat_ttl)
            from jobbench.worker.settle import reap_dead

            reap_dead(self.broker, self.bench, self.keep)
        if now >= self._next["cleanup"]:
            self._next["cleanup"] = now + CLEANUP_INTERVAL
            self.broker.cleanup()

    def _heartbeat(self, force: bool = False) -> None:
        """Every heartbeat_interval; sooner (at most once a second) when the current job
        changed, so listings show a long job within a second or two of its start."""
        now = time.monotonic()
        changed = self.info.current_job != self._beat_job
        soon = changed and now >= self._next["heartbeat"] - self.heartbeat_interval + 1.0
        if force or soon or now >= self._next["heartbeat"]:
            self._next["heartbeat"] = now + self.heartbeat_interval
            self.info.state = "stopping" if self._stopping else self.info.state
            self._beat_job = self.info.current_job
            self.broker.heartbeat(self.info, self.heartbeat_ttl)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping += 1
        if self._stopping == 1:
            self.log(
                f"Warm shutdown requested ({signal.Signals(signum).name}); "
                "finishing the current job"
            )
            if self._pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGUSR2)
            if not self._running:
                self._done = self._pid is None
            return
        self.log("Cold shutdown: stopping the current job")
        self._cold_deadline = time.monotonic() + HARD_GRACE
        for running in self._running.values():
            self._request_stop(running, "stopped: the worker was shut down (cold)", False)
        # "*" also stops a job whose "started" line we have not read yet, and otherwise just
        # asks the executor to leave.
        self._signal_stop(["*"])

    def _shutdown_executor(self) -> None:
        """On exit: let an idle executor leave (it checks every second), else kill it."""
        if self._pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGUSR2)
        deadline = time.monotonic() + 2 * HARD_GRACE
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                self._pid_exit(status)
                return
            time.sleep(0.02)
        self._kill_executor()

    def log(self, message: str, level: int = logging.INFO) -> None:
        """A line on the ``jobbench.worker`` logger (jobbench.logs escapes what job ids,
        methods and reasons, all from enqueue callers, could do to a terminal)."""
        if not self.quiet:
            logs.emit(LOG, message, level)
