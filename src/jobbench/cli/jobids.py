"""One job id on the command line: the caller's id, or the namespaced ``<site>::<id>`` form.

Workers log and store a job's id as ``<site>::<job_id>`` (docs/architecture.md, "Ids"); a
person copies that from a log line, so every ``jobs`` command that takes an id accepts both.
The caller's id wins when both readings exist (any string is a valid caller's id, so
``s1::x`` may itself be one). The namespaced form also names the site: unless --site (or
$JOBBENCH_SITE) says otherwise it is the site the command acts on, default_site included; a
site given that differs from it is an error with the command line that would work.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from jobbench.cli.main import CliState
from jobbench.errors import NoSuchJobError
from jobbench.jobs.record import SEPARATOR

if TYPE_CHECKING:
    from jobbench.jobs.job import Job


@contextmanager
def job_site(state: CliState, job_id: str) -> Iterator[str]:
    """Open the site context ``job_id`` belongs to; yield the caller's id to act on."""
    from jobbench.context import site_context

    bench = state.bench
    site = _site_for(state, job_id)
    with site_context(site, bench.path):
        yield caller_id(site, job_id)


def _site_for(state: CliState, job_id: str) -> str:
    """The site to look in: the one given (--site, $JOBBENCH_SITE), else the one a namespaced
    id names, else default_site."""
    prefix = _prefix(job_id)
    bench = state.bench
    named = prefix is not None and bench.site_exists(prefix)
    given = state.site_option or os.environ.get("JOBBENCH_SITE")
    if named and not given:
        assert prefix is not None
        return prefix
    sites = state.sites(bench)
    if len(sites) > 1 and prefix in sites:  # --site all: the id says which one
        assert prefix is not None
        return prefix
    return state.site()  # the one site, or the one-site error with its hint


def caller_id(site: str, job_id: str) -> str:
    """The caller's id of ``job_id`` on ``site`` (the current site context)."""
    from jobbench.jobs.job import get_job

    if get_job(job_id) is not None:
        return job_id
    prefix = _prefix(job_id)
    if prefix == site:
        rest = job_id.split(SEPARATOR, 1)[1]
        if get_job(rest) is not None:
            return rest
    if prefix is not None and prefix != site:
        ctx = click.get_current_context(silent=True)
        words = ctx.command_path.split()[1:] if ctx else ["jobs", "show"]
        raise NoSuchJobError(
            f"no job {job_id!r} on site '{site}'; the id names site '{prefix}': "
            + shlex.join(["jobbench", "--site", prefix, *words, job_id])
        )
    raise NoSuchJobError(f"no job {job_id!r} on site '{site}'")


def found_job(job_id: str) -> Job:
    """The job ``job_site`` found, read again; gone since (deleted meanwhile): NoSuchJobError."""
    from jobbench.context import current
    from jobbench.jobs.job import get_job

    job = get_job(job_id)
    if job is None:
        raise NoSuchJobError(f"no job {job_id!r} on site '{current().site}'")
    return job


def _prefix(job_id: str) -> str | None:
    site, sep, rest = job_id.partition(SEPARATOR)
    return site if sep and site and rest else None
