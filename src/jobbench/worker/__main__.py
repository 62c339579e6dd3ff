"""``python -m jobbench.worker --bench PATH --queue q1,q2 ...``: a worker's supervisor in a
fresh interpreter.

``jobbench worker`` checks its options and the bench's config with the whole command line
loaded (click, every command module and, through them, SQLAlchemy), then replaces itself with
this module (``exec``: same pid, same terminal, signals and supervisor configs unchanged). So
the parent that lives as long as the worker holds only what supervising needs: the broker
client, the config and the heartbeat loop; no site context, no ORM, no app code. Its executor
child imports those after the fork (``worker/worker.py``). The options are the ``worker``
command's own, so ``ps`` still says what the process is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobbench import logs
from jobbench.bench import Bench
from jobbench.errors import JobbenchError
from jobbench.worker.worker import Worker


def command(
    bench: Path,
    queues: list[str],
    *,
    strategy: str,
    burst: bool,
    quiet: bool,
    concurrency: int | None,
    async_concurrency: int | None,
    log_format: str,
) -> list[str]:
    """The argv that starts this module for those options (what ``jobbench worker`` execs)."""
    argv = [sys.executable, "-m", "jobbench.worker", "--bench", str(bench)]
    argv += ["--queue", ",".join(queues), "--strategy", strategy, "--log-format", log_format]
    argv += ["--burst"] if burst else []
    argv += ["--quiet"] if quiet else []
    argv += ["--concurrency", str(concurrency)] if concurrency else []
    argv += ["--async-concurrency", str(async_concurrency)] if async_concurrency else []
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobbench.worker", description=__doc__)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--log-format", default="text")
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--async-concurrency", type=int)
    args = parser.parse_args(argv)
    try:
        logs.configure(args.log_format)
        worker = Worker(
            Bench(Path(args.bench)),
            [q for q in args.queue.split(",") if q],
            args.strategy,
            args.burst,
            args.quiet,
            concurrency=args.concurrency,
            async_concurrency=args.async_concurrency,
        )
    except JobbenchError as exc:  # checked by `jobbench worker` already; changed since?
        print(f"Error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return worker.work()


if __name__ == "__main__":
    sys.exit(main())
