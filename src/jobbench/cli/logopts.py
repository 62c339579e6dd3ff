"""``--log-format text|json`` of the long-running commands (worker, worker-pool, schedule,
start), and setting up their logging (jobbench.logs) before they run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from jobbench.bench import Bench

F = TypeVar("F", bound=Callable[..., Any])


def log_format_option(fn: F) -> F:
    return click.option(
        "--log-format",
        "log_format",
        type=click.Choice(["text", "json"]),
        help="Log lines for people (text) or log shippers (json, one object a line); "
        "default: the log_format config key, else text.",
    )(fn)


def setup_logging(bench: Bench, option: str | None) -> str:
    """Route the jobbench loggers to stdout in the chosen format; returns the format."""
    from jobbench import logs

    fmt = logs.log_format(bench.common_config(), option)
    logs.configure(fmt)
    return fmt
