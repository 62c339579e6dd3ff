"""The ``jobbench`` command line: click commands grouped by topic."""

from jobbench.cli.main import cli, main

__all__ = ["cli", "main"]
