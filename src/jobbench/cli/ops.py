"""Operations commands: start, doctor, show-pending-jobs, purge-jobs, ready-for-migration,
metrics, and ``setup supervisor|systemd``. Reading goes through ``jobbench.inspect.Inspector``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from jobbench.cli.logopts import log_format_option
from jobbench.cli.main import (
    CliState,
    cli,
    echo,
    echo_json,
    format_option,
    pass_state,
    progress,
)
from jobbench.cli.output import print_table
from jobbench.errors import JobbenchError

PURGED_STATUSES = ["queued", "scheduled"]  # never "started": running jobs are left alone


def _inspector(state: CliState) -> Any:
    from jobbench.inspect import Inspector

    return Inspector(state.bench)


@cli.command("start")
@click.option("--no-color", is_flag=True, help="Plain log prefixes even on a terminal.")
@log_format_option
@pass_state
def start_command(state: CliState, no_color: bool, log_format: str | None) -> None:
    """Run the scheduler and every worker the config asks for, until Ctrl-C."""
    from jobbench.start import Starter

    colour = False if no_color else None
    sys.exit(Starter(state.bench, colour=colour, log_format=log_format).run())


@cli.command("doctor")
@format_option
@pass_state
def doctor_command(state: CliState, fmt: str) -> None:
    """Schedulers running (leader, last tick, next due); per site: scheduler state and why,
    apps that cannot load, last scheduled runs, pending jobs; queues with the age of their
    oldest queued job; workers online; stale workers; warnings."""
    from jobbench.cli import health

    bench = state.bench
    report = _inspector(state).doctor(state.sites(bench, required=False) or bench.list_sites())
    if fmt == "json":
        echo_json(report)
        return
    health.print_liveness(report["scheduler"])
    for site in report["sites"]:
        word = "active" if site["active"] else f"inactive: {site['reason']}"
        alive = "" if site["scheduler_alive"] else "; no scheduler process is running"
        echo(f"{site['site']}: scheduler {word}{alive}")
        health.print_last_runs(site)
        for app, problem in site["app_problems"].items():
            echo(
                f"{site['site']}: app {app} cannot be loaded: {problem} (fix or restore it, or "
                f"take it off the site: jobbench --site {site['site']} uninstall-app {app})"
            )
        _print_pending(site["pending"], f"Pending jobs of {site['site']}")
    print_table(
        ["worker", "queues", "state", "current job", "done", "failed", "util", "stale"],
        (
            [
                *(w["name"], ",".join(w["queues"]), w["state"], w["current_job"] or ""),
                *(w["successful"], w["failed"], f"{w['utilisation']:.0%}"),
                f"yes ({w['heartbeat_age']:.0f} s)" if w["stale"] else "",
            ]
            for w in report["workers"]
        ),
        title=f"Workers online: {len(report['workers'])}",
    )
    if report["stale_workers"]:
        echo(f"Stale workers: {', '.join(report['stale_workers'])}")
    health.print_queues(report)
    from jobbench.cli.outbox import print_doctor

    print_doctor(report["outbox"])
    health.print_warnings(report["warnings"])


def _print_pending(groups: list[dict[str, Any]], title: str) -> None:
    if not groups:
        echo(f"{title}: none")
        return
    print_table(  # scheduled: delayed jobs and retries, "next run" the earliest of them
        ["site", "queue", "method", "queued", "started", "scheduled", "deferred", "next run"],
        (
            [
                *(g["site"], g["queue"], g["method"]),
                *(g["counts"].get(s, 0) for s in ("queued", "started", "scheduled", "deferred")),
                _next_run(g.get("next_run")),
            ]
            for g in groups
        ),
        title=title,
    )


def _next_run(epoch: float | None) -> str:
    import datetime as dt

    if epoch is None:
        return ""
    return f"{dt.datetime.fromtimestamp(epoch, tz=dt.UTC):%Y-%m-%d %H:%M:%S}"


@cli.command("show-pending-jobs")
@click.option("--queue", help="Only this queue.")
@format_option
@pass_state
def show_pending_jobs(state: CliState, queue: str | None, fmt: str) -> None:
    """Pending jobs (queued, running, scheduled: delayed or waiting for a retry) per site and
    queue, by method, with the next run time of the scheduled ones."""
    inspector = _inspector(state)
    if queue:
        _check_queue(state, queue)
    sites: list[str | None] = [*state.sites(required=False)] or [None]
    groups = [g.to_dict() for site in sites for g in inspector.pending(site=site, queue=queue)]
    if fmt == "json":
        echo_json(groups)
        return
    _print_pending(groups, "Pending jobs")


def _check_queue(state: CliState, queue: str) -> None:
    from jobbench.jobs.queues import validate_queue

    validate_queue(state.bench.common_config(), queue)


@cli.command("purge-jobs")
@click.option("--queue", help="Only this queue.")
@click.option(
    "--event",
    help="Only jobs enqueued with this event, and scheduled runs of this scheduler event's "
    "job types (hourly, daily, ..., cron).",
)
@click.option("--site", "site_name", help="Only this site (same as the global --site).")
@pass_state
def purge_jobs(
    state: CliState, queue: str | None, event: str | None, site_name: str | None
) -> None:
    """Delete jobs waiting to run (queued, or waiting for a retry); never running ones."""
    bench = state.bench
    if site_name:
        bench.require_site(site_name)
    if queue:
        _check_queue(state, queue)
    frequency = _event_frequency(event) if event else None
    sites = [site_name] if site_name else state.sites(bench, required=False)
    count = purge_pending_jobs(state, sites or None, queue, frequency, event)
    where = f" from queue {queue}" if queue else ""
    of = f" of event {event}" if event else ""
    scope = ", ".join(sites) if sites else "all sites"
    echo(f"Purged {count} job(s){of}{where} ({scope})")
    if event and frequency is None and count == 0:
        from jobbench.scheduler.sync import HOOK_FREQUENCIES

        echo(
            f"Note: no waiting job carries event {event!r}, and it is not a scheduler event "
            f"({', '.join(HOOK_FREQUENCIES)}, cron)",
            err=True,
        )


def _event_frequency(event: str) -> str | None:
    """The Scheduled Job Type frequency of a scheduler event name; None for any other event
    (an ``enqueue(event=...)`` label)."""
    from jobbench.scheduler.sync import HOOK_FREQUENCIES

    if event == "cron":
        return "Cron"
    return HOOK_FREQUENCIES.get(event)


def purge_pending_jobs(
    state: CliState,
    sites: list[str] | None,
    queue: str | None,
    frequency: str | None,
    event: str | None = None,
) -> int:
    """Delete the waiting jobs of ``sites`` (None: every site), optionally of one queue and,
    with ``event``, only those enqueued with that event (Frappe's ``enqueue(event=...)``) or,
    with ``frequency``, scheduled runs of job types with that frequency. Running jobs are
    never touched: the broker refuses to delete a ``started`` job, also one claimed while we
    purge."""
    inspector = _inspector(state)
    broker = inspector.broker
    if event is None and frequency is None:
        from jobbench.jobs.tracking import sync_canceled_tasks

        scope: list[str | None] = [*sites] if sites else [None]
        count: int = sum(
            broker.purge(PURGED_STATUSES, queue, site) for site in progress(scope, "Purging")
        )
        for site in sites or state.bench.list_sites():  # dependents the purge canceled
            sync_canceled_tasks(broker, state.bench, site)
        return count
    from jobbench.context import site_context
    from jobbench.inspect import scheduled_job_type
    from jobbench.jobs.tracking import delete_job_synced

    count = 0
    for site in sites or state.bench.list_sites():
        names: set[str] = set()
        if frequency is not None:
            with site_context(site, state.bench.path) as local:
                names = set(
                    local.db.get_all(
                        "Scheduled Job Type", filters={"frequency": frequency}, pluck="name"
                    )
                )
        for status in PURGED_STATUSES:
            records = list(inspector.iter_jobs(site=site, queue=queue, status=status))
            for record in records:
                matches = (event is not None and record.event == event) or (
                    scheduled_job_type(record) in names
                )
                if matches and delete_job_synced(broker, state.bench, record.id):
                    count += 1
    return count


@cli.command("ready-for-migration")
@pass_state
def ready_for_migration(state: CliState) -> None:
    """Exit 0 when no job of the site is queued, running or waiting for a retry; else 1."""
    inspector = _inspector(state)
    for site in state.sites():
        counts = inspector.site_pending_counts(site)
        if any(counts.values()):
            raise JobbenchError(
                f"site {site} is not ready for migration: {counts['queued']} queued, "
                f"{counts['started']} running, {counts['scheduled']} waiting for a retry; "
                "stop the scheduler and let the workers finish (or purge-jobs)"
            )
        click.echo(f"Site {site} is ready for migration")


@cli.command("metrics")
@pass_state
def metrics_command(state: CliState) -> None:
    """Print the bench's metrics in Prometheus text format."""
    from jobbench.inspect import metrics_text

    bench = state.bench
    click.echo(metrics_text(_inspector(state), bench.list_sites()), nl=False)


@cli.group("setup")
def setup_group() -> None:
    """Write process-manager configuration into the bench's config/ folder."""


user_option = click.option(
    "--user", help="The user the processes run as: an existing, non-root user (default: you)."
)
allow_root_option = click.option(
    "--allow-root", is_flag=True, help="Let the processes run as root (refused otherwise)."
)


@setup_group.command("supervisor")
@user_option
@allow_root_option
@pass_state
def setup_supervisor(state: CliState, user: str | None, allow_root: bool) -> None:
    """config/supervisor.conf: the scheduler and every worker group."""
    from jobbench.setup import write_supervisor

    for path in write_supervisor(state.bench, user, allow_root):
        echo(f"Wrote {path}")


@setup_group.command("systemd")
@user_option
@allow_root_option
@pass_state
def setup_systemd(state: CliState, user: str | None, allow_root: bool) -> None:
    """config/systemd/: a scheduler service, a template per worker group, and a target."""
    from jobbench.setup import write_systemd

    for path in write_systemd(state.bench, user, allow_root):
        echo(f"Wrote {path}")
