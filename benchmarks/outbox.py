"""Benchmark: what the transactional outbox costs (issue 11, item 1).

    python benchmarks/outbox.py [--brokers sqlite,redis] [--commits 500] [--polls 2000]

On a fresh bench with one SQLite site, per broker:

* **commit**: COMMITS transactions, each saving one document, then ``db.commit()``: without a
  job, with a plain ``enqueue`` beside the document, and with ``enqueue_after_commit=True``
  (the outbox row in the transaction, relayed after the commit). Milliseconds per commit,
  median of 3 runs.
* **idle poll**: the cost of a worker's or scheduler's relay check of one site with an empty
  outbox (``outbox.has_rows``, what ``OutboxRelay.poll`` does per site each second), on the
  SQLite site and, when their servers answer, on a PostgreSQL and a MariaDB site: wall and
  CPU microseconds per check.

Redis: the server in $JOBBENCH_TEST_REDIS (default redis://127.0.0.1:6379), database 10; only
this bench's keys are deleted afterwards. PostgreSQL/MariaDB: the servers tests/conftest.py
uses ($JOBBENCH_TEST_PG, $JOBBENCH_TEST_MARIADB), a database made and dropped here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import jobbench
from jobbench.bench import Bench, init_bench
from jobbench.sites import drop_database, new_site

SITE = "outbox.local"
APP = "boxapp"
REDIS_URL = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/") + "/10"
PG = os.environ.get("JOBBENCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
MARIADB = os.environ.get("JOBBENCH_TEST_MARIADB", "mysql://root@127.0.0.1:3306")
DOCTYPES = """
from jobbench.model import Document


class Note(Document):
    doctype = "Box Note"
    subject: str
"""


def build(root: Path, broker: str) -> Bench:
    bench = init_bench(root / f"bench-{broker}")
    app = bench.path / "apps" / APP
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "hooks.py").write_text(f'doctypes = ["{APP}.doctypes.Note"]\n')
    (app / "doctypes.py").write_text(DOCTYPES)
    (app / "jobs.py").write_text("def noop(n=0):\n    return n\n")
    if broker == "redis":
        bench.update_common_config({"redis_queue": REDIS_URL, "bench_id": uuid.uuid4().hex[:8]})
    new_site(bench, SITE, apps=[APP])
    return bench


def commit_cost(bench: Bench, commits: int) -> dict[str, float]:
    """Milliseconds per commit of one document: alone, with an enqueue, with an after-commit
    job; medians of 3 runs."""
    method = f"{APP}.jobs.noop"
    kinds = {
        "document only": lambda i: None,
        "+ enqueue": lambda i: jobbench.enqueue(method, n=i),
        "+ enqueue_after_commit": lambda i: jobbench.enqueue(
            method, n=i, enqueue_after_commit=True
        ),
    }
    out = {}
    with jobbench.site_context(SITE, bench.path) as local:
        for name, extra in kinds.items():
            runs = []
            for _ in range(3):
                began = time.perf_counter()
                for i in range(commits):
                    jobbench.new_doc("Box Note", subject=f"n{i}").insert()
                    extra(i)
                    local.db.commit()
                runs.append(1000 * (time.perf_counter() - began) / commits)
            out[name] = statistics.median(runs)
    return out


def poll_cost(bench: Bench, site: str, polls: int) -> tuple[float, float]:
    """(wall, CPU) microseconds of one empty-outbox check of ``site``."""
    from jobbench.jobs import outbox

    outbox.has_rows(bench, site)  # the engine and its pool made once, as in a worker
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(polls):
        outbox.has_rows(bench, site)
    return (
        1e6 * (time.perf_counter() - wall) / polls,
        1e6 * (time.process_time() - cpu) / polls,
    )


def _drop_keys(bench: Bench) -> None:
    """Delete this bench's keys (only its own: the database may be shared)."""
    import redis

    from jobbench.brokers.redis_conn import key_prefix

    client = redis.Redis.from_url(REDIS_URL)
    prefix = key_prefix(str(bench.common_config()["bench_id"]))
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


def _server_site(bench: Bench, name: str, server: str) -> str | None:
    url = f"{server}/jb_outbox_{uuid.uuid4().hex[:8]}"
    try:
        new_site(bench, name, db_url=url)
    except jobbench.JobbenchError as exc:
        print(f"  ({name}: skipped, {exc})")
        return None
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="sqlite,redis")
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--polls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for broker in args.brokers.split(","):
            bench = build(Path(tmp), broker)
            print(f"broker {broker}: ms per commit of one document (median of 3 x {args.commits})")
            for name, ms in commit_cost(bench, args.commits).items():
                print(f"  {name:24} {ms:6.2f}")
            if broker == "redis":
                _drop_keys(bench)
        bench = build(Path(tmp), "idle")
        made = {
            "postgres": _server_site(bench, "pg", PG),
            "mariadb": _server_site(bench, "my", MARIADB),
        }  # noqa: E501
        print("idle relay check of one site (empty outbox): wall / CPU microseconds")
        for label, site in (("sqlite", SITE), ("postgres", "pg"), ("mariadb", "my")):
            if label == "sqlite" or made[label]:
                wall, cpu = poll_cost(bench, site, args.polls)
                print(f"  {label:9} {wall:6.0f} / {cpu:4.0f}")
        for url in made.values():
            if url:
                drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
