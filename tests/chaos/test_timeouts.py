"""Timeouts under load: jobs that swallow every exception, block in C with signals masked, or
fork a child and block, mixed with normal jobs. Each bad job is stopped within its timeout +
5 s, its children are reaped, and the workers keep running the normal jobs."""

from __future__ import annotations

import pytest

import jobbench
from jobbench.jobs.record import full_id

from .helpers import APP, SITE, Chaos, account, process_alive, wait_until

TIMEOUT = 1
BAD = ("swallow_everything", "block_in_c", "fork_child")


@pytest.mark.parametrize("concurrency", [1, 4])
def test_bad_jobs_are_stopped_in_time_and_workers_go_on(
    chaos: Chaos, long_form: bool, concurrency: int
) -> None:
    """With ``concurrency`` 4 a hard stop also cuts off the normal jobs beside the bad one:
    they are requeued and run again, which their records say ("interrupted: ...")."""
    per_kind = 5 if long_form else 2
    normal = 1000 if long_form else 150
    workers = [
        chaos.start_worker(f"chaos-t{i}-{chaos.kind}", concurrency=concurrency) for i in range(3)
    ]
    bad: dict[str, str] = {}  # stored id -> kind
    pid_files: dict[str, str] = {}
    normal_ids: list[str] = []
    with chaos.ctx():
        for round_ in range(per_kind):
            for kind in BAD:
                job_id = f"bad-{kind}-{round_}"
                kwargs: dict[str, object] = {"seconds": 60}
                if kind == "fork_child":
                    kwargs["pid_file"] = pid_files[job_id] = str(chaos.tmp / f"{job_id}.pid")
                jobbench.enqueue(
                    f"{APP}.jobs.{kind}", queue="default", timeout=TIMEOUT, job_id=job_id, **kwargs
                )
                bad[full_id(SITE, job_id)] = kind
                for i in range(normal // (per_kind * len(BAD))):
                    normal_id = f"ok-{round_}-{kind}-{i}"
                    jobbench.enqueue(
                        f"{APP}.jobs.effect",
                        queue="default",
                        job_id=normal_id,
                        path=chaos.effects_file,
                        pause=0.005,
                    )
                    normal_ids.append(full_id(SITE, normal_id))
    wait_until(lambda: chaos.pending() == 0, 120, "every job to end", pause=0.2)

    broker = chaos.broker()
    late = {}
    for job_id, kind in bad.items():
        record = broker.get(job_id)
        assert record is not None and record.status == "failed", (job_id, record)
        assert "JobTimeoutException" in (record.exc_info or ""), (kind, record.exc_info)
        assert record.started_at and record.ended_at
        took = record.ended_at - record.started_at
        if took > TIMEOUT + 5:
            late[job_id] = round(took, 2)
    assert late == {}, f"bad jobs ran past timeout + 5 s: {late}"
    for job_id, pid_file in pid_files.items():
        pid = int(wait_until(lambda f=pid_file: _read(f), 5, f"{job_id}'s child pid"))
        wait_until(lambda p=pid: not process_alive(p), 5, f"child {pid} of {job_id} to be reaped")
    acc = account(broker, normal_ids, chaos.effects())
    assert acc.problems() == {}, acc
    assert acc.finished == len(normal_ids), acc
    assert all(w.alive() for w in workers), "a worker died from a bad job"


def _read(path: str) -> str | None:
    try:
        return open(path).read().strip() or None
    except OSError:
        return None
