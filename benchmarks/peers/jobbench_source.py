"""Which jobbench is measured: the one this interpreter imports (for the editable install, the
working tree), or a git revision exported into the run's temporary directory
(``--jobbench-rev REV``), which edits made to the working tree while the benchmarks run do not
reach: the producer here and every worker import that copy."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from harness.common import HERE

REPO = HERE.parent
_source: Path | None = None  # src/ of the exported revision, or None
_revision = ""


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode()


def use_revision(rev: str, root: Path) -> None:
    """Export ``src/`` of ``rev`` into ``root`` and import jobbench from there from now on (in
    this process and in the workers). Call it before anything imports jobbench."""
    global _source, _revision
    if "jobbench" in sys.modules:
        raise RuntimeError("jobbench is imported already: export the revision first")
    sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", sha, "src"], capture_output=True, check=True
    ).stdout
    dest = root / f"jobbench-{sha[:12]}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    _source, _revision = dest / "src", f"{sha[:12]} (--jobbench-rev {rev})"
    sys.path.insert(0, str(_source))


def env() -> dict[str, str]:
    """What a jobbench process needs in its environment to import the measured jobbench."""
    if _source is None:
        return {}
    rest = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(_source), rest) if p)}


def describe() -> str:
    """The measured jobbench, in words, for the report."""
    if _revision:
        return f"commit {_revision}, exported from git for the run"
    try:
        head = _git("rev-parse", "--short=12", "HEAD").strip()
        changed = len(_git("status", "--porcelain", "--", "src").splitlines())
    except SystemExit:
        return "the installed jobbench (not a git checkout)"
    return f"the working tree (HEAD {head}, {changed} uncommitted paths under src/)"
