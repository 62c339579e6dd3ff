"""``jobbench dashboard``: serve the web dashboard with uvicorn; ``dashboard set-password``."""

from __future__ import annotations

import signal
import sys

import click

from jobbench.cli.main import CliState, cli, pass_state
from jobbench.errors import ConfigError


@cli.group("dashboard", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int) -> None:
    """Serve the web dashboard (a login is required when HOST is not a loopback address)."""
    if ctx.invoked_subcommand is not None:
        return
    state: CliState = ctx.ensure_object(CliState)
    serve(state, host, port)


def serve(state: CliState, host: str, port: int) -> None:
    try:
        import uvicorn

        from jobbench.dashboard.app import create_app
        from jobbench.dashboard.auth import is_loopback
    except ImportError as exc:
        raise ConfigError(
            f"the dashboard needs the 'dashboard' extra ({exc}); "
            "install it with: pip install 'jobbench[dashboard]'"
        ) from exc
    bench = state.bench
    require_auth = not is_loopback(host)
    conf = bench.common_config()
    if require_auth and not (conf.get("dashboard_password_hash") or conf.get("dashboard_token")):
        raise ConfigError(
            f"--host {host} is not a loopback address, so the dashboard needs a login: run "
            "'jobbench dashboard set-password' or set dashboard_token in common_site_config.json"
        )
    app = create_app(bench.path, require_auth=require_auth)
    click.echo(f"Dashboard of {bench.path} on http://{host}:{port}/", err=True)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: exit 0 then, not "killed"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(app, host=host, port=port, log_level="warning")


@dashboard.command("set-password")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The new password (prompted for when not given).",
)
@pass_state
def set_password(state: CliState, password: str) -> None:
    """Store a PBKDF2-SHA256 hash of a dashboard password in common_site_config.json."""
    from jobbench.dashboard.auth import hash_password

    if len(password) < 8:
        raise ConfigError("the dashboard password must have at least 8 characters")
    bench = state.bench
    bench.update_common_config({"dashboard_password_hash": hash_password(password)})
    click.echo("Dashboard password set (dashboard_password_hash in common_site_config.json)")
