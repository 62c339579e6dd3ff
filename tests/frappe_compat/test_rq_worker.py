"""Port of frappe/core/doctype/rq_worker/test_rq_worker.py.

Frappe lists workers through the virtual "RQ Worker" doctype, read from RQ's worker registry.
jobbench's workers register themselves in the broker with each heartbeat; the Inspector
(``jobbench.inspect``) lists them, and ``jobbench doctor --format json`` shows them. Both
cases need a running worker that consumes ``short``. (The forks' ``UnitTestRqWorker`` class is
empty and has no case to port.)
"""

# The first docstring line of each test names its Frappe case in full (file::Class::test),
# which may run past 100 characters.
# ruff: noqa: E501

from __future__ import annotations

import json

from integration.scheduler_helpers import wait_until
from jobbench.inspect import WorkerState

from .conftest import Compat


def _running_worker(fc: Compat) -> list[WorkerState]:
    fc.start_worker("short,default,long")
    return list(wait_until(lambda: fc.inspector().workers(), 30, "a worker to register"))


def test_get_worker_list(fc: Compat) -> None:
    """Frappe: frappe/core/doctype/rq_worker/test_rq_worker.py::TestRQWorker::test_get_worker_list.

    The worker registry lists at least one worker, and one of them consumes ``short``."""
    workers = _running_worker(fc)
    assert len(workers) >= 1
    assert any("short" in w.queues for w in workers)


def test_worker_serialization(fc: Compat) -> None:
    """Frappe: frappe/core/doctype/rq_worker/test_rq_worker.py::TestRQWorker::test_worker_serialization.

    A listed worker can be loaded by its name: ``jobbench doctor --format json`` shows the
    worker of that name, with its process id and queues."""
    workers = _running_worker(fc)
    done = fc.cli("doctor", "--format", "json")
    assert done.returncode == 0, done.stderr
    shown = {w["name"]: w for w in json.loads(done.stdout)["workers"]}
    worker = shown[workers[0].name]
    assert worker["pid"] == workers[0].pid
    assert worker["queues"] == workers[0].queues
