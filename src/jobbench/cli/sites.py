"""Bench, site and app commands: init, new-site, install-app, migrate, list-sites, list-apps,
new-app, uninstall-app, remove-app."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from jobbench.bench import init_bench
from jobbench.cli.main import CliState, cli, echo, echo_json, format_option, pass_state, progress
from jobbench.errors import JobbenchError

if TYPE_CHECKING:  # jobbench.sites loads SQLAlchemy: imported where a command needs it
    from jobbench.sites import MigrateReport


@cli.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
def init_command(directory: str) -> None:
    """Create a bench in DIRECTORY (new or empty)."""
    bench = init_bench(directory)
    click.echo(f"Created bench at {bench.path}")
    click.echo(f"  config: {bench.common_config_path}")


@cli.command("new-site")
@click.argument("name")
@click.option(
    "--db-url",
    help="SQLAlchemy URL of the site database (default: SQLite in the "
    "site folder), e.g. postgresql://user@host/db or mysql://root@host/db.",
)
@click.option("--install-app", "apps", multiple=True, help="App to install right away.")
@pass_state
def new_site_command(state: CliState, name: str, db_url: str | None, apps: tuple[str, ...]) -> None:
    """Create site NAME with its database and the built-in doctypes."""
    from jobbench import sites as site_ops

    bench = state.bench
    report = site_ops.new_site(bench, name, db_url, apps)  # all or nothing, apps included
    click.echo(
        f"Created site {name} ({len(report.doctypes)} doctypes, "
        f"{len(report.changes.created_tables)} tables)"
    )
    for app in apps:
        click.echo(f"Installed app {app} on {name}")


@cli.command("install-app")
@click.argument("app")
@pass_state
def install_app_command(state: CliState, app: str) -> None:
    """Install APP (an importable package with hooks.py) on the site, then migrate."""
    from jobbench import sites as site_ops

    bench = state.bench
    site = state.site()
    report = site_ops.install_app(bench, site, app)
    click.echo(f"Installed app {app} on {site}")
    _print_changes(report)


@cli.command("migrate")
@pass_state
def migrate_command(state: CliState) -> None:
    """Create or extend the tables of every doctype on the site (or --site all)."""
    from jobbench import sites as site_ops

    bench = state.bench
    for site in progress(state.sites(bench), "Migrating"):
        report = site_ops.migrate_site(bench, site)
        click.echo(f"Migrated {site}: {len(report.doctypes)} doctypes")
        _print_changes(report)


def _print_changes(report: MigrateReport) -> None:
    changes = report.changes
    for table in changes.created_tables:
        click.echo(f"  created table {table}")
    for col in changes.added_columns:
        click.echo(f"  added column {col}")
    for index in changes.created_indexes:
        click.echo(f"  created index {index}")
    if not changes:
        click.echo("  schema already up to date")
    sync = report.scheduler
    for label, names in (
        ("added", sync.inserted),
        ("updated", sync.updated),
        ("removed", sync.deleted),
    ):
        for name in names:
            click.echo(f"  {label} scheduled job type {name}")
    for warning in sync.warnings:
        echo(f"Warning: {warning}", err=True)


@cli.command("list-sites")
@format_option
@pass_state
def list_sites_command(state: CliState, fmt: str) -> None:
    """List the sites of the bench."""
    sites = state.bench.list_sites()
    if fmt == "json":
        echo_json(sites)
        return
    for site in sites:
        echo(site)


@cli.command("list-apps")
@format_option
@pass_state
def list_apps_command(state: CliState, fmt: str) -> None:
    """List installed apps per site (with --site, of that site only); an app whose code cannot
    be loaded is named with the reason."""
    from jobbench.apps import app_problems

    bench = state.bench
    bench.add_apps_dir_to_path()
    sites = state.sites(bench, required=False) or bench.list_sites()
    data = {
        site: ["jobbench", *bench.site_config(site).get("installed_apps", [])] for site in sites
    }
    problems = app_problems(sorted({app for apps in data.values() for app in apps[1:]}))
    if fmt == "json":
        echo_json(data)
        for problem in problems.values():  # the data keeps its shape; the news goes to stderr
            echo(f"Warning: {problem}", err=True)
        return
    for site, apps in data.items():
        shown = [f"{a} (cannot be loaded: {problems[a]})" if a in problems else a for a in apps]
        echo(f"{site}: {', '.join(shown)}")


@cli.command("new-app")
@click.argument("name")
@pass_state
def new_app_command(state: CliState, name: str) -> None:
    """Create app NAME in the bench's apps/ folder: hooks.py, tasks.py and a doctype."""
    from jobbench import sites as site_ops

    bench = state.bench
    path = site_ops.new_app(bench, name)
    echo(f"Created app {name} in {path}")
    echo("  hooks.py (doctypes, a commented scheduler_events), tasks.py, item.py")
    sites = state.sites(bench, required=False) or bench.list_sites()
    site = sites[0] if len(sites) == 1 else "SITE"
    echo(f"  next: jobbench --site {site} install-app {name}")


yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


@cli.command("uninstall-app")
@click.argument("app")
@click.option("--drop-data", is_flag=True, help="Also drop the tables of the app's doctypes.")
@yes_option
@pass_state
def uninstall_app_command(state: CliState, app: str, drop_data: bool, yes: bool) -> None:
    """Take APP off the site: installed_apps and its scheduled job types. Its tables and data
    stay unless --drop-data. Works when the app's code is gone."""
    from jobbench import sites as site_ops

    bench = state.bench
    site = state.site()
    site_ops.check_uninstall(bench, site, app)  # before asking: a wrong name is an error
    data = "its tables and their data are DROPPED" if drop_data else "its tables are kept"
    _confirm(yes, f"Uninstall app {app} from site {site} ({data})?")
    report = site_ops.uninstall_app(bench, site, app, drop_data)
    echo(f"Uninstalled app {app} from {site}")
    if report.app_problem:
        echo(f"  (its code could not be loaded: {report.app_problem})")
    for name in report.job_types:
        echo(f"  removed scheduled job type {name}")
    for table in report.tables:
        echo(f"  dropped table {table}")
    if not drop_data:
        echo("  its tables and data are kept (install it again to use them)")
    if report.pending_jobs:
        echo(
            f"Warning: {report.pending_jobs} job(s) of {app} are still waiting or running on "
            f"{site}; workers refuse them now (jobbench --site {site} purge-jobs to drop them)",
            err=True,
        )


@cli.command("remove-app")
@click.argument("app")
@pass_state
def remove_app_command(state: CliState, app: str) -> None:
    """Move APP out of the bench's apps/ folder (into archived/apps/) once no site has it."""
    from jobbench import sites as site_ops

    target = site_ops.remove_app(state.bench, app)
    echo(f"Removed app {app} from the bench: moved to {target}")


def _confirm(yes: bool, question: str) -> None:
    """Ask on a terminal (on stderr: stdout stays data); anything but yes changes nothing.
    Without a terminal there is nobody to ask: --yes is then required, so a script says what
    it means instead of piping answers."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise JobbenchError(f"{question[:-1]}: pass --yes to confirm (no terminal to ask on)")
    try:
        if click.confirm(question, default=False, err=True):
            return
    except click.Abort:
        click.echo(err=True)
    raise JobbenchError("not confirmed; nothing was changed")
