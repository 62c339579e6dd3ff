"""Bench and site commands: init, new-site, install-app, migrate, list-sites, list-apps."""

from __future__ import annotations

import click

from jobbench import sites as site_ops
from jobbench.bench import init_bench
from jobbench.cli.main import CliState, cli, echo, echo_json, format_option, pass_state, progress


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
    bench = state.bench
    site = state.site()
    report = site_ops.install_app(bench, site, app)
    click.echo(f"Installed app {app} on {site}")
    _print_changes(report)


@cli.command("migrate")
@pass_state
def migrate_command(state: CliState) -> None:
    """Create or extend the tables of every doctype on the site (or --site all)."""
    bench = state.bench
    for site in progress(state.sites(bench), "Migrating"):
        report = site_ops.migrate_site(bench, site)
        click.echo(f"Migrated {site}: {len(report.doctypes)} doctypes")
        _print_changes(report)


def _print_changes(report: site_ops.MigrateReport) -> None:
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
    """List installed apps per site (with --site, of that site only)."""
    bench = state.bench
    sites = state.sites(bench, required=False) or bench.list_sites()
    data = {
        site: ["jobbench", *bench.site_config(site).get("installed_apps", [])] for site in sites
    }
    if fmt == "json":
        echo_json(data)
        return
    for site, apps in data.items():
        echo(f"{site}: {', '.join(apps)}")
