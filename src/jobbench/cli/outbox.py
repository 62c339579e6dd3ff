"""``jobbench outbox``: the after-commit jobs waiting in the site databases (jobs/outbox.py).

``flush`` relays them to the broker now (workers and the scheduler do it every second by
themselves); ``list`` shows them, oldest first. Both act on --site NAME, $JOBBENCH_SITE or
default_site, or every site with --site all (or no site configured).
"""

from __future__ import annotations

import time
from typing import Any

import click

from jobbench.cli.main import CliState, cli, echo, echo_json, format_option, pass_state
from jobbench.cli.output import ERROR_WIDTH, print_table
from jobbench.errors import BrokerError, JobbenchError


@cli.group("outbox")
def outbox_group() -> None:
    """After-commit jobs waiting in the site database for the broker."""


@outbox_group.command("flush")
@click.option(
    "--wait",
    type=click.FloatRange(0, 3600),
    default=10.0,
    show_default=True,
    help="Seconds to wait for another relay (a worker, the scheduler) holding a site's turn.",
)
@pass_state
def flush_command(state: CliState, wait: float) -> None:
    """Relay every waiting job to the broker now, in order; say how many went."""
    from jobbench.jobs import outbox

    bench = state.bench
    for site in state.sites(bench, required=False) or bench.list_sites():
        try:
            result = outbox.flush(bench, site, wait=wait)
        except BrokerError as exc:
            raise BrokerError(f"{site}: nothing more relayed, the jobs wait: {exc}") from exc
        if result.busy:
            raise JobbenchError(
                f"{site}: another relay held the site's outbox for {wait:g} s; its jobs are "
                "being delivered by it (try again, or a longer --wait)"
            )
        echo(f"{site}: relayed {result.delivered} job(s), {result.left} waiting")


@outbox_group.command("list")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@format_option
@pass_state
def list_command(state: CliState, limit: int, fmt: str) -> None:
    """The waiting jobs, oldest first: id, method, queue, age, attempts, last error."""
    from jobbench.jobs import outbox

    bench = state.bench
    now = time.time()
    found: list[dict[str, Any]] = []
    for site in state.sites(bench, required=False) or bench.list_sites():
        found += [{"site": site, **row} for row in outbox.rows(bench, site, limit)]
    if fmt == "json":
        echo_json(found)
        return
    print_table(
        ["site", "seq", "job id", "method", "queue", "age", "attempts", "error"],
        (
            [
                *(r["site"], r["seq"], r["job_id"], r["method"], r["queue"]),
                f"{max(0.0, now - r['created']):.0f} s",
                r["attempts"],
                (r["last_error"] or "")[:ERROR_WIDTH],
            ]
            for r in found
        ),
        title=f"Outbox: {len(found)} job(s) waiting",
    )


def print_doctor(boxes: list[dict[str, Any]]) -> None:
    """doctor's outbox lines: one per site with waiting jobs (or an unreadable outbox)."""
    for box in boxes:
        if box["unreadable"]:
            echo(f"{box['site']}: outbox unreadable: {box['unreadable']}")
        elif box["undelivered"]:
            age = box["oldest_age"] or 0.0
            echo(
                f"{box['site']}: outbox: {box['undelivered']} job(s) waiting, the oldest for "
                f"{age:.0f} s" + (f", last error: {box['last_error']}" if box["last_error"] else "")
            )
