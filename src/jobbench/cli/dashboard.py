"""``jobbench dashboard``: serve the web dashboard with uvicorn; ``dashboard set-password``
and ``dashboard generate-token`` store a login in common_site_config.json."""

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
        from jobbench.dashboard.auth import check_startup, needs_login
        from jobbench.dashboard.guard import WILDCARDS
    except ImportError as exc:
        raise ConfigError(
            f"the dashboard needs the 'dashboard' extra ({exc}); "
            "install it with: pip install 'jobbench[dashboard]'"
        ) from exc
    bench = state.bench
    conf = bench.common_config()
    check_startup(conf, host, str(bench.path))  # one-line errors saying how to fix them
    app = create_app(bench.path, require_auth=needs_login(conf, host), listen_host=host)
    click.echo(f"Dashboard of {bench.path} on http://{host}:{port}/", err=True)
    if host.strip() in WILDCARDS and conf.get("dashboard_allowed_hosts") is None:
        click.echo(
            "Note: only the Host names localhost, 127.0.0.1 and ::1 are served; set "
            "dashboard_allowed_hosts to the names clients use to reach this machine",
            err=True,
        )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: exit 0 then, not "killed"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)


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


@dashboard.command("generate-token")
@click.option("--replace", is_flag=True, help="Replace a token that is already set.")
@pass_state
def generate_token(state: CliState, replace: bool) -> None:
    """Store a random dashboard_token (for the login form and Authorization: Bearer)."""
    from jobbench.dashboard.auth import MIN_TOKEN_CHARS, generate_token

    bench = state.bench
    current = bench.common_config().get("dashboard_token")
    if current and not replace:
        state_of = "is set" if len(str(current)) >= MIN_TOKEN_CHARS else "is set but too short"
        raise ConfigError(
            f"a dashboard_token {state_of} in common_site_config.json; pass --replace to "
            "store a new one (ending every dashboard session)"
        )
    token = generate_token()
    bench.update_common_config({"dashboard_token": token})
    click.echo("Dashboard token stored (dashboard_token in common_site_config.json):", err=True)
    click.echo(token)
