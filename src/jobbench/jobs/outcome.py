"""What a run of a job came to, as the executor reports it: plain data, importable by the
worker's parent without the machinery that runs jobs (``jobs/execute.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outcome:
    status: str  # finished | failed | stopped
    result: bytes | None = None
    exc_info: str | None = None
    retry: bool = True  # False: failed for good even with retries left (a refused record)
