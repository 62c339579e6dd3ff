"""Private files: what jobbench writes that holds job data or secrets is readable by its owner
only (0600).

SQLite creates a database file with 0644 (less the umask) and gives its ``-wal``, ``-shm`` and
``-journal`` files the main file's mode. So the main file is created empty with 0600 before
SQLite opens it (an empty file is a valid, empty database), and its companions follow.

A file that already exists with group or other bits (made by an older jobbench, or by hand) is
tightened to 0600 when jobbench opens it, if this process owns it: every jobbench process of a
bench runs as one user, so no one else needs to read it. A file owned by someone else is left
as it is: that owner chose its mode, and chmod would fail anyway.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def tighten(path: str | os.PathLike[str]) -> None:
    """Drop the group and other bits of ``path`` when this process owns it; else leave it."""
    try:
        info = os.stat(path)
    except OSError:  # missing or unreadable: whoever opens it next reports that
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077 and info.st_uid == os.geteuid():
        # Best effort: a mode we cannot change must not keep the bench from working.
        with contextlib.suppress(OSError):
            os.chmod(path, mode & 0o700)


def private_sqlite_file(path: str | os.PathLike[str]) -> None:
    """Make sure the SQLite database at ``path`` (and its companions) is 0600, creating the
    main file empty when it is missing. A missing folder is left to SQLite to report."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_MODE)
    except FileExistsError:
        tighten(path)
    except OSError:  # no folder, no permission: SQLite's own error says it better
        return
    else:
        os.close(fd)
    for suffix in SQLITE_COMPANIONS:
        tighten(Path(os.fspath(path) + suffix))
