"""Scheduler commands: schedule, enable/disable/pause/resume/status, maintenance mode,
trigger-scheduler-event and scheduled-jobs list."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from jobbench.cli.logopts import log_format_option, setup_logging
from jobbench.cli.main import CliState, cli, echo, echo_json, format_option, pass_state
from jobbench.errors import JobbenchError

ON_OFF = click.Choice(["on", "off"])


@cli.command("schedule")
@click.option("--quiet", is_flag=True)
@log_format_option
@pass_state
def schedule_command(state: CliState, quiet: bool, log_format: str | None) -> None:
    """Run the scheduler: every tick, enqueue the due job types of every active site."""
    from jobbench.scheduler.scheduler import Scheduler
    from jobbench.worker.settle import dead_worker_reaper

    setup_logging(state.bench, log_format)
    reaper = dead_worker_reaper(state.bench)
    sys.exit(Scheduler(state.bench, quiet=quiet, reaper=reaper).run())


def _say(site: str, status: str, fmt: str) -> None:
    """bench's line: ``Scheduler is <status> for site <site>``, or its JSON object."""
    if fmt == "json":
        click.echo(json.dumps({"status": status, "site": site}))
    else:
        echo(f"Scheduler is {status} for site {site}")


def _set_enabled(state: CliState, enabled: bool, fmt: str | None = "text") -> None:
    """System Settings' enable_scheduler; ``fmt=None`` prints enable-scheduler's line."""
    from jobbench.context import site_context
    from jobbench.model.query import write_singles

    for site in state.sites():
        with site_context(site, state.bench.path) as local:
            settings = local.doctypes()["System Settings"].get_meta()
            write_singles(local.db, settings, {"enable_scheduler": enabled})
            local.db.commit()
        if fmt is None:
            click.echo(f"{'Enabled' if enabled else 'Disabled'} for {site}")
        else:
            _say(site, "enabled" if enabled else "disabled", fmt)


def _set_paused(state: CliState, paused: bool, fmt: str) -> None:
    bench = state.bench
    for site in state.sites(bench):
        if paused:
            bench.update_site_config(site, {"pause_scheduler": 1})
        else:
            current = bench.site_config(site)
            current.pop("pause_scheduler", None)
            from jobbench.config import write_json

            write_json(bench.site_config_path(site), current)
        _say(site, "paused" if paused else "resumed", fmt)


@cli.command("enable-scheduler")
@pass_state
def enable_scheduler(state: CliState) -> None:
    """Turn the scheduler on for the site (System Settings)."""
    _set_enabled(state, True, None)


@cli.command("disable-scheduler")
@pass_state
def disable_scheduler(state: CliState) -> None:
    """Turn the scheduler off for the site (System Settings)."""
    _set_enabled(state, False, None)


@cli.command("scheduler")
@click.argument("action", type=click.Choice(["pause", "resume", "enable", "disable", "status"]))
@format_option
@pass_state
def scheduler_command(state: CliState, action: str, fmt: str) -> None:
    """pause|resume (site config) | enable|disable (System Settings) | status."""
    if action in ("enable", "disable"):
        _set_enabled(state, action == "enable", fmt)
    elif action in ("pause", "resume"):
        _set_paused(state, action == "pause", fmt)
    else:
        _status(state, fmt)


def _status(state: CliState, fmt: str) -> None:
    """bench's status: "enabled" when the scheduler serves the site, else "disabled" (paused
    and maintenance mode included, as bench counts them); the text form says why beneath, then
    whether a scheduler process runs (leader, last tick, next due) and a warning when none
    runs while job types are due. JSON is bench's one object for one site (a list of them for
    several), with the process's state added: ``scheduler_alive``, ``leader``, ``last_tick``,
    ``next_tick_due`` (epoch seconds), ``due_job_types``."""
    from jobbench.cli import health
    from jobbench.inspect import Inspector, warnings

    inspector = Inspector(state.bench)
    states = inspector.scheduler(state.sites())
    liveness = inspector.scheduler_liveness()
    if fmt == "json":
        objects = [_status_object(s, liveness) for s in states]
        click.echo(json.dumps(objects[0] if len(objects) == 1 else objects))
        return
    for site in states:
        _say(site.site, "enabled" if site.active else "disabled", "text")
        if not site.active:
            echo(f"  (not running: {site.reason})")
    echo(health.liveness_line(liveness.to_dict()))
    health.print_warnings(warnings(liveness, states, [], []))


def _status_object(site: Any, liveness: Any) -> dict[str, Any]:
    return {
        "status": "enabled" if site.active else "disabled",
        "site": site.site,
        "scheduler_alive": liveness.alive,
        "leader": liveness.leader,
        "last_tick": liveness.last_tick,
        "next_tick_due": liveness.next_tick_due,
        "due_job_types": site.due_job_types,
    }


@cli.command("set-maintenance-mode")
@click.argument("state_", metavar="on|off", type=ON_OFF)
@pass_state
def set_maintenance_mode(state: CliState, state_: str) -> None:
    """Maintenance mode stops the scheduler for the site."""
    bench = state.bench
    for site in state.sites(bench):
        bench.update_site_config(site, {"maintenance_mode": 1 if state_ == "on" else 0})
        click.echo(f"Maintenance mode is {state_} for site {site}")


@cli.command("trigger-scheduler-event")
@click.argument("event")
@pass_state
def trigger_scheduler_event(state: CliState, event: str) -> None:
    """Run now, logged like a scheduled run: a job type (by name or method), or every job type
    of a hook event (all, hourly, daily, ..., cron)."""
    from jobbench.context import site_context
    from jobbench.documents import get_doc
    from jobbench.scheduler.sync import HOOK_FREQUENCIES

    for site in state.sites():
        with site_context(site, state.bench.path) as local:
            names = _job_types_for(local, event, HOOK_FREQUENCIES)
            for name in names:
                try:
                    get_doc("Scheduled Job Type", name).execute()
                except JobbenchError:
                    raise
                except Exception as exc:
                    raise click.ClickException(
                        f"{name} on {site} failed: {type(exc).__name__}: {exc} "
                        "(the traceback is in its Scheduled Job Log)"
                    ) from exc
                echo(f"Ran {name} on {site}")


def _job_types_for(local: Any, event: str, frequencies: dict[str, str]) -> list[str]:
    db = local.db
    if event in frequencies or event == "cron":
        frequency = frequencies.get(event, "Cron")
        names = db.get_all("Scheduled Job Type", filters={"frequency": frequency}, pluck="name")
    elif db.exists("Scheduled Job Type", event):
        names = [event]
    else:
        names = db.get_all("Scheduled Job Type", filters={"method": event}, pluck="name")
    if not names:
        raise JobbenchError(
            f"no scheduled job type or event named {event!r} on site {local.site}; "
            "see 'jobbench scheduled-jobs list'"
        )
    return list(names)


@cli.group("scheduled-jobs")
def scheduled_jobs() -> None:
    """Scheduled Job Types."""


@scheduled_jobs.command("list")
@format_option
@pass_state
def scheduled_jobs_list(state: CliState, fmt: str) -> None:
    """Every job type with its schedule and its last and next run."""
    from jobbench.context import site_context

    rows = []
    fields = [
        "name",
        "method",
        "frequency",
        "cron_format",
        "stopped",
        "last_execution",
        "next_execution",
        "queue",
    ]
    for site in state.sites():
        with site_context(site, state.bench.path) as local:
            for row in local.db.get_all(
                "Scheduled Job Type", fields=fields, order_by="next_execution asc"
            ):
                rows.append({"site": site, **row})
    if fmt == "json":
        echo_json(rows)
        return
    from jobbench.cli.output import print_table

    print_table(
        ["site", "name", "frequency", "stopped", "last run", "next run"],
        (
            [
                r["site"],
                r["name"],
                f"{r['frequency']} {r['cron_format'] or ''}".strip(),
                "yes" if r["stopped"] else "",
                r["last_execution"] or "-",
                r["next_execution"] or "-",
            ]
            for r in rows
        ),
    )
