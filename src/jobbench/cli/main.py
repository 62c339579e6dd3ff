"""Entry point: global options, bench/site resolution, and one-line errors.

Every JobbenchError becomes ``Error: <reason>`` on stderr and exit code 1. A usage error
(unknown option, missing argument, bad choice) is one line too, ``Error: <click's reason> (see
'jobbench CMD --help')``, with exit code 2, so scripts can tell a mistyped command from a
refused one; a global option given after the command gets the corrected command line as its
hint. An OSError (a path too long, a folder we may not write) is one line too. A traceback only
appears for a bug, and then with $JOBBENCH_DEBUG=1 in full.

What the CLI prints that came from outside (job ids, methods, names, error messages) goes
through ``printable`` (control characters escaped) and, in tables, ``cli/output.py`` (rich
markup taken literally, tabs escaped off a terminal): nothing a caller put in an id can move
the cursor, recolour, forge a line or split a row.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from jobbench.bench import Bench, find_bench
from jobbench.errors import JobbenchError, SiteNotInitializedError
from jobbench.utils import printable

T = TypeVar("T")


@dataclass
class CliState:
    bench_option: str | None
    site_option: str | None

    @property
    def bench(self) -> Bench:
        return find_bench(self.bench_option)

    def sites(self, bench: Bench | None = None, required: bool = True) -> list[str]:
        """The sites a command acts on: --site NAME, --site all, $JOBBENCH_SITE, default_site."""
        bench = bench or self.bench
        site = self.site_option or os.environ.get("JOBBENCH_SITE")
        site = site or bench.common_config().default_site
        if site == "all":
            return bench.list_sites()
        if not site:
            if required:
                raise SiteNotInitializedError(
                    "no site given; pass --site NAME (before the command), set $JOBBENCH_SITE "
                    "or default_site in common_site_config.json"
                )
            return []
        bench.require_site(site)
        return [site]

    def site(self) -> str:
        sites = self.sites()
        if len(sites) != 1:
            raise SiteNotInitializedError(_one_site_hint(sites))
        return sites[0]


def _one_site_hint(sites: list[str]) -> str:
    """Why ``--site all`` cannot serve this command, with the command line that would."""
    ctx = click.get_current_context(silent=True)
    path = ctx.command_path if ctx else "jobbench COMMAND"
    example = sites[0] if sites else "NAME"
    one = path.replace("jobbench", f"jobbench --site {example}", 1)
    text = f"'{path}' acts on one site, not --site all; pass --site NAME, e.g. {one}"
    if ctx is not None and any(p.name == "all_sites" for p in ctx.command.params):
        text += f" (and {one} --all-sites for every site)"
    return text


pass_state = click.make_pass_decorator(CliState)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--bench",
    "bench_option",
    metavar="DIR",
    help="Bench folder (else $JOBBENCH_BENCH, else found by walking up from the current folder).",
)
@click.option("--site", "site_option", metavar="NAME", help="Site to act on, or 'all'.")
@click.version_option(package_name="jobbench")
@click.pass_context
def cli(ctx: click.Context, bench_option: str | None, site_option: str | None) -> None:
    """jobbench: background jobs and scheduled jobs, the Frappe way."""
    ctx.obj = CliState(bench_option, site_option)


def progress(items: Sequence[T], label: str) -> Iterable[T]:
    """A progress bar on stderr for long multi-site operations, when stderr is a terminal
    (never in pipes, logs or tests, whose output stays plain)."""
    if len(items) < 2 or not sys.stderr.isatty():
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description=label, console=Console(stderr=True), transient=True)


def echo(value: object, err: bool = False) -> None:
    """``click.echo`` of text that may hold outside data, control characters escaped."""
    click.echo(printable(value), err=err)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


format_option = click.option(  # -f: bench's own short spelling
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)


def main(argv: list[str] | None = None) -> None:
    from jobbench.cli import (  # noqa: F401 - registers the commands
        dashboard,
        jobs,
        ops,
        outbox,
        scheduler,
        sites,
    )

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="jobbench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare ``jobbench`` / ``jobbench jobs``
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:
        click.echo(f"Error: {_one_line(_usage_message(exc, args))}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # It may quote an argument: escape it too. (Final for type checkers only: click reads
        # the attribute when it shows the error, which is why it is replaced here.)
        exc.message = _one_line(exc.message)  # type: ignore[misc]
        exc.show()
        sys.exit(exc.exit_code)
    except JobbenchError as exc:
        click.echo(f"Error: {_one_line(str(exc))}", err=True)
        sys.exit(1)
    except OSError as exc:  # the system refused a path or a write: the reason, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"Error: {_one_line(f'{exc.strerror or exc}{where}')}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def _one_line(text: str) -> str:
    return printable(" ".join(text.split()))


GLOBAL_OPTIONS = ("--site", "--bench")


def _usage_message(exc: click.UsageError, args: list[str]) -> str:
    """Click's reason and a hint, on one line (click's own form is three: usage, a help
    pointer and the error, which the README's one-line promise rules out)."""
    if isinstance(exc, click.NoSuchOption) and exc.option_name in GLOBAL_OPTIONS:
        fixed = _global_first(args, exc.option_name)
        return f"{exc.option_name} goes before the command: {fixed}"
    message = exc.format_message().strip().rstrip(".")
    path = exc.ctx.command_path if exc.ctx else "jobbench"
    return f"{message} (see '{path} --help')"


def _global_first(args: list[str], option: str) -> str:
    """The command line with ``option`` (and its value) moved in front of the command."""
    rest, moved = list(args), [option, "NAME" if option == "--site" else "DIR"]
    for i, arg in enumerate(rest):
        if arg.startswith(f"{option}="):
            moved = [option, arg.split("=", 1)[1]]
            del rest[i]
            break
        if arg == option:
            if i + 1 < len(rest) and not rest[i + 1].startswith("-"):
                moved = [option, rest[i + 1]]
                del rest[i + 1]
            del rest[i]
            break
    return shlex.join(["jobbench", *moved, *rest])
