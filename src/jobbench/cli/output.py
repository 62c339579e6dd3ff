"""Tables that work for people and for pipes.

On a terminal a table is drawn with rich at the terminal's full width, and only free-text
columns (a method path, an error) wrap: ids, names and times are never wrapped or cut, so they
can be copied whole. When
stdout is not a terminal (a pipe, a file, a test) the same table is plain tab-separated text:
a header line, then one line per row, no borders, nothing cut, so ``cut -f1`` gives the ids.
Tabs and newlines inside a value are escaped (``printable``), so a value never splits a row.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import click

from jobbench.utils import printable

ERROR_WIDTH = 80  # characters of an error message shown in a table's error column


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    title: str | None = None,
    fold: Sequence[str] = ("method", "error"),
) -> None:
    """Print ``rows`` under ``columns``: rich on a terminal, tab-separated otherwise.

    ``fold``: the columns that may wrap on a narrow terminal; every other column (ids, names,
    counts, times) stays whole."""
    data = [[printable("" if v is None else v) for v in row] for row in rows]
    if not is_terminal():
        if title:
            click.echo(printable(title))
        click.echo("\t".join(columns))
        for row in data:
            click.echo("\t".join(row))
        return
    _rich_table(columns, data, title, fold)


def _rich_table(
    columns: Sequence[str], data: list[list[str]], title: str | None, fold: Sequence[str]
) -> None:
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(printable(title)) if title else None)
    for i, name in enumerate(columns):
        widest = max([len(name), *(len(row[i]) for row in data)])
        if name in fold:
            table.add_column(name, overflow="fold", min_width=min(widest, 20))
        else:
            table.add_column(name, no_wrap=True, min_width=widest)
    for row in data:
        table.add_row(*(Text(v) for v in row))  # Text: "[red]" in an id is not markup
    console = Console()
    # Too narrow for the whole columns: draw it wider and let the terminal wrap the lines,
    # rather than have rich crop the columns on the right.
    needed = Measurement.get(console, console.options, table).minimum
    Console(width=max(console.width, needed)).print(table)


def short_error(exc_info: str | None) -> str:
    """The last line of a traceback (``ValueError: ...``), cut to ``ERROR_WIDTH``."""
    lines = [line.strip() for line in (exc_info or "").splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return last if len(last) <= ERROR_WIDTH else last[: ERROR_WIDTH - 1] + "…"
