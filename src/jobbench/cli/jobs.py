"""Job commands: worker, worker-pool, enqueue, execute, and ``jobs list|show|stop|...``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from jobbench.cli.jobids import found_job, job_site
from jobbench.cli.logopts import log_format_option, setup_logging
from jobbench.cli.main import CliState, cli, echo, echo_json, format_option, pass_state
from jobbench.errors import JobbenchError

STRATEGIES = click.Choice(["default", "round_robin", "random"])
MAX_TIMEOUT = 2**31 - 1  # seconds: 68 years


def _kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not valid JSON ({exc.msg} at column {exc.colno})", param_hint="--kwargs"
        ) from None
    except RecursionError:
        raise click.BadParameter("nested too deeply to read", param_hint="--kwargs") from None
    except ValueError:  # the only other ValueError json.loads raises: the int-string limit
        raise click.BadParameter(
            f"a number has more than {sys.get_int_max_str_digits()} digits",
            param_hint="--kwargs",
        ) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object like '{\"x\": 1}'", param_hint="--kwargs")
    return value


def _queues(state: CliState, text: str | None) -> list[str]:
    from jobbench.jobs.queues import parse_queue_list

    return parse_queue_list(state.bench.common_config(), text)


@cli.command("worker")
@click.option(
    "--queue",
    "queue_text",
    help="Queues in priority order, e.g. short,default (default: every queue).",
)
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@click.option("--strategy", type=STRATEGIES, default="default", show_default=True)
@click.option("--quiet", is_flag=True, help="Log only start and stop.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    help="Sync jobs at once, in threads (default: the queue's 'concurrency' in workers, or 1).",
)
@click.option(
    "--async-concurrency",
    type=click.IntRange(1, 10_000),
    help="async def jobs at once (default: config async_concurrency, or 10).",
)
@click.option(
    "--async-mode",
    type=click.Choice(["thread", "loop"]),
    help="async def jobs each in a thread of its own, or all on one shared event loop "
    "(default: config async_mode, or thread; docs/scaling.md says when to choose which).",
)
@log_format_option
@pass_state
def worker_command(
    state: CliState,
    queue_text: str | None,
    burst: bool,
    strategy: str,
    quiet: bool,
    concurrency: int | None,
    async_concurrency: int | None,
    async_mode: str | None,
    log_format: str | None,
) -> None:
    """Run one worker (a supervisor plus an executor) on the queues."""
    from jobbench.worker.worker import Worker

    bench = state.bench
    setup_logging(bench, log_format)
    worker = Worker(
        bench,
        _queues(state, queue_text),
        strategy,
        burst,
        quiet,
        concurrency=concurrency,
        async_concurrency=async_concurrency,
        async_mode=async_mode,
    )
    sys.exit(worker.work())


@cli.command("worker-pool")
@click.option("--queue", "queue_text", help="Queues in priority order (default: every queue).")
@click.option("--num-workers", default=2, show_default=True, type=click.IntRange(1, 256))
@click.option("--burst", is_flag=True, help="Each worker exits once the queues are empty.")
@click.option("--strategy", type=STRATEGIES, default="default", show_default=True)
@click.option("--quiet", is_flag=True)
@click.option("--with-scheduler", is_flag=True, help="Also run the scheduler (like Frappe).")
@log_format_option
@pass_state
def worker_pool_command(
    state: CliState,
    queue_text: str | None,
    num_workers: int,
    burst: bool,
    strategy: str,
    quiet: bool,
    with_scheduler: bool,
    log_format: str | None,
) -> None:
    """Run N workers under one parent that restarts any that die."""
    from jobbench.worker.pool import WorkerPool

    setup_logging(state.bench, log_format)

    queues = _queues(state, queue_text)
    pool = WorkerPool(state.bench, queues, num_workers, strategy, burst, quiet, with_scheduler)
    sys.exit(pool.run())


@cli.command("enqueue")
@click.argument("method")
@click.option("--queue", default="default", show_default=True)
@click.option("--kwargs", "kwargs_text", metavar="JSON", help="Arguments as a JSON object.")
@click.option("--at-front", is_flag=True, help="Put the job at the head of its queue.")
@click.option(  # bounded: a larger number overflows the brokers' 64-bit integer fields
    "--timeout",
    type=click.IntRange(-1, MAX_TIMEOUT),
    help="Seconds (-1: none); default: the queue's.",
)
@click.option("--job-id", help="Your id for the job.")
@click.option(
    "--in",
    "delay",
    type=click.FloatRange(0, MAX_TIMEOUT),
    metavar="SECONDS",
    help="Run it this many seconds from now (it waits as 'scheduled').",
)
@click.option(
    "--at",
    "run_at",
    metavar="ISO-DATETIME",
    help="Run it at this time, e.g. 2030-01-31T09:00 (site time) or with +01:00 / Z.",
)
@click.option(
    "--depends-on",
    "depends_on",
    multiple=True,
    metavar="ID",
    help="Queue it once this job finished (repeat for several; it waits as 'deferred').",
)
@click.option("--allow-dependency-failure", is_flag=True, help="Run it even if a dependency fails.")
@click.option("--concurrency-key", metavar="KEY", help="At most --concurrency-limit at once.")
@click.option(
    "--concurrency-limit",
    type=click.IntRange(1, 1_000_000),
    help="Jobs of --concurrency-key running at once (default 1, or the method's in config).",
)
@pass_state
def enqueue_command(
    state: CliState,
    method: str,
    queue: str,
    kwargs_text: str | None,
    at_front: bool,
    timeout: int | None,
    job_id: str | None,
    delay: float | None,
    run_at: str | None,
    depends_on: tuple[str, ...],
    allow_dependency_failure: bool,
    concurrency_key: str | None,
    concurrency_limit: int | None,
) -> None:
    """Enqueue METHOD (a dotted path) on the site; prints the job id (and, for a delayed
    job, its run time on stderr)."""
    from jobbench.context import site_context
    from jobbench.jobs import enqueue as jobs

    if delay is not None and run_at is not None:
        raise click.UsageError("give --in or --at, not both")
    if concurrency_limit is not None and not concurrency_key:
        raise click.UsageError("--concurrency-limit needs --concurrency-key")
    kwargs = _kwargs(kwargs_text)
    options: dict[str, Any] = {"queue": queue, "at_front": at_front, "timeout": timeout}
    if depends_on:
        options.update(depends_on=list(depends_on))
        options.update(allow_dependency_failure=allow_dependency_failure)
    if concurrency_key:
        options.update(concurrency_key=concurrency_key, concurrency_limit=concurrency_limit)
    with site_context(state.site(), state.bench.path) as local:
        if delay is not None:
            job = jobs.enqueue_in(delay, method, job_id=job_id, **options, **kwargs)
        elif run_at is not None:
            job = jobs.enqueue_at(_iso(run_at), method, job_id=job_id, **options, **kwargs)
        else:
            job = jobs.enqueue(method, job_id=job_id, **options, **kwargs)
        zone = local.time_zone()
    echo(job.id if job is not None else "(not enqueued: a duplicate is pending)")
    if job is not None and job.is_deferred:
        echo(f"deferred: waits for {', '.join(depends_on)}", err=True)
    if job is not None and job.run_at is not None:
        echo(
            f"runs at {job.run_at.astimezone(_zone(zone)):%Y-%m-%d %H:%M:%S %z} ({zone})", err=True
        )


def _iso(text: str) -> Any:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            "not an ISO date-time like 2030-01-31T09:00 or 2030-01-31T09:00+01:00",
            param_hint="--at",
        ) from None


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


@cli.command("execute")
@click.argument("method")
@click.option("--kwargs", "kwargs_text", metavar="JSON", help="Arguments as a JSON object.")
@pass_state
def execute_command(state: CliState, method: str, kwargs_text: str | None) -> None:
    """Run METHOD now in this process as Administrator, commit, and print its result."""
    from jobbench.context import site_context
    from jobbench.documents import call
    from jobbench.jobs.enqueue import method_path

    kwargs = _kwargs(kwargs_text)
    with site_context(state.site(), state.bench.path) as local:
        method_path(method)  # MethodNotFound with a clear reason before anything runs
        try:
            result = call(method, **kwargs)
        except JobbenchError:
            raise
        except Exception as exc:
            local.db.rollback()
            raise click.ClickException(f"{method} raised {type(exc).__name__}: {exc}") from exc
        local.db.commit()
    if result is not None:
        echo(json.dumps(result, default=str))


@cli.group("jobs")
def jobs_group() -> None:
    """List and act on jobs."""


def _site_ctx(state: CliState) -> Any:
    from jobbench.context import site_context

    return site_context(state.site(), state.bench.path)


@jobs_group.command("list")
@click.option(
    "--status",
    type=click.Choice(
        ["queued", "started", "finished", "failed", "stopped", "canceled", "scheduled", "deferred"]
    ),
)
@click.option("--queue")
@click.option("--all-sites", is_flag=True, help="Jobs of every site.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@format_option
@pass_state
def jobs_list(
    state: CliState, status: str | None, queue: str | None, all_sites: bool, limit: int, fmt: str
) -> None:
    """Jobs of the site, newest first (tab-separated when not on a terminal)."""
    from jobbench.cli.output import print_table, short_error
    from jobbench.jobs.job import list_jobs

    with _site_ctx(state):
        if queue is not None:
            check_queue_filter(state, queue)
        jobs = list_jobs(site="all" if all_sites else None, queue=queue, status=status, limit=limit)
        rows = [j.to_dict() for j in jobs]
    if fmt == "json":
        echo_json(rows)
        return
    columns = ["id", "site", "queue", "status", "method", "enqueued", "attempts"]
    with_error = status in ("failed", "stopped") or any(r["status"] == "failed" for r in rows)
    # a scheduled job (delayed, or waiting for a retry) shows when it runs
    with_run_at = status == "scheduled" or any(r["run_at"] is not None for r in rows)
    # a deferred job shows what it waits for
    with_deps = status == "deferred" or any(r["status"] == "deferred" for r in rows)
    print_table(
        [
            *columns,
            *(["runs at"] if with_run_at else []),
            *(["depends on"] if with_deps else []),
            *(["error"] if with_error else []),
        ],
        (
            [
                *(r["id"], r["site"], r["queue"], r["status"], r["method"]),
                f"{r['enqueued_at']:%Y-%m-%d %H:%M:%S}",
                r["attempts"],
                *([_when(r["run_at"])] if with_run_at else []),
                *([" ".join(r["depends_on"])] if with_deps else []),
                *([short_error(r["exc_info"])] if with_error else []),
            ]
            for r in rows
        ),
    )


def _when(value: Any) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def check_queue_filter(state: CliState, queue: str) -> None:
    """A --queue filter names a configured queue or one that holds jobs; else InvalidQueue
    listing the valid names (an unknown queue would only ever show an empty list)."""
    from jobbench.brokers.factory import get_broker
    from jobbench.jobs.queues import validate_queue

    conf = state.bench.common_config()
    if queue not in get_broker(state.bench, conf).counts():
        validate_queue(conf, queue)


@jobs_group.command("show")
@click.argument("job_id")
@format_option
@pass_state
def jobs_show(state: CliState, job_id: str, fmt: str) -> None:
    """Everything about one job (ID: yours, or <site>::ID as the worker logs it)."""
    with job_site(state, job_id) as found:
        job = found_job(found)
        data = job.to_dict()
        data["dependents"] = job.dependents()  # jobs still waiting for this one
    if fmt == "json":
        echo_json(data)
        return
    for key, value in data.items():
        if key != "exc_info":
            echo(f"{key:>12}: {value}")
    if data["exc_info"]:
        for line in str(data["exc_info"]).splitlines():  # a traceback keeps its lines
            echo(line)


@jobs_group.command("stop")
@click.argument("job_id")
@pass_state
def jobs_stop(state: CliState, job_id: str) -> None:
    """Cancel a queued job, or stop a running one."""
    from jobbench.jobs.job import stop_job

    with job_site(state, job_id) as found:
        status = stop_job(found)
    word = "stop requested (the worker stops it within ~1 s)" if status == "started" else status
    echo(f"{job_id}: {word}")


@jobs_group.command("run-now")
@click.argument("job_id")
@pass_state
def jobs_run_now(state: CliState, job_id: str) -> None:
    """Queue a scheduled job (delayed, or waiting for a retry) now instead of at its time."""
    from jobbench.jobs.job import get_job, run_job_now

    with job_site(state, job_id) as found:
        if not run_job_now(found):
            job = get_job(found)
            raise JobbenchError(
                f"{job_id} is {job.status if job else 'gone'}, not scheduled; only a delayed "
                "job or one waiting for a retry can be run now"
            )
    echo(f"{job_id}: queued")


@jobs_group.command("retry")
@click.argument("job_id")
@click.option("--force", is_flag=True, help="Also run a finished job again.")
@pass_state
def jobs_retry(state: CliState, job_id: str, force: bool) -> None:
    """Queue a failed, stopped or canceled job again (a finished one only with --force)."""
    from jobbench.jobs.job import get_job, retry_job

    with job_site(state, job_id) as found:
        job = get_job(found)
        if job is not None and job.status == "finished" and not force:
            raise JobbenchError(
                f"{job_id} finished; only failed, stopped or canceled jobs are retried "
                "(pass --force to run it again)"
            )
        if not retry_job(found):
            raise click.ClickException(f"{job_id} is still pending; only ended jobs are retried")
    echo(f"{job_id}: queued again")


@jobs_group.command("delete")
@click.argument("job_id")
@pass_state
def jobs_delete(state: CliState, job_id: str) -> None:
    """Delete a job that is not running."""
    from jobbench.jobs.job import delete_job

    with job_site(state, job_id) as found:
        if not delete_job(found):
            raise click.ClickException(f"{job_id} is running; stop it first")
    echo(f"{job_id}: deleted")


@jobs_group.command("purge-failed")
@click.option("--queue")
@click.option("--all-sites", is_flag=True)
@pass_state
def jobs_purge_failed(state: CliState, queue: str | None, all_sites: bool) -> None:
    """Delete the failed job records of the site."""
    from jobbench.jobs.job import purge_failed

    with _site_ctx(state):
        if queue is not None:
            check_queue_filter(state, queue)
        count = purge_failed(queue=queue, all_sites=all_sites)
    click.echo(f"Purged {count} failed job(s)")
