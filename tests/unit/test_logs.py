"""jobbench.logs and the job-end line: formats, batching (one write per batch), routing to an
app's own handlers, and reading an exception out of a traceback."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from jobbench import logs
from jobbench.worker.joblog import exception_of, job_end


class CountingStream(io.StringIO):
    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture(autouse=True)
def clean_logger() -> Iterator[None]:
    logger = logging.getLogger(logs.ROOT)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def test_text_lines_are_escaped_and_a_batch_is_one_write() -> None:
    stream = CountingStream()
    logs.configure("text", stream)
    log = logs.get_logger("worker")
    with logs.batch():
        for i in range(3):
            logs.emit(log, f"job {i}\n\x1b[31mforged")
        assert stream.writes == 0
    assert stream.writes == 1
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and all("\\n\\x1b[31mforged" in ln for ln in lines)
    assert lines[0][2] == ":" and lines[0][8:] == " job 0\\n\\x1b[31mforged"  # HH:MM:SS


def test_json_lines_carry_fields_with_stable_keys() -> None:
    stream = io.StringIO()
    logs.configure("json", stream)
    logs.emit(logs.get_logger("worker"), "hi\nthere", logging.WARNING, "job_end", {"job_id": "a"})
    (line,) = stream.getvalue().splitlines()
    data = json.loads(line)
    assert list(data) == ["ts", "level", "logger", "event", "message", "job_id"]
    assert (data["level"], data["logger"], data["event"]) == (
        "warning",
        "jobbench.worker",
        "job_end",
    )
    assert data["message"] == "hi\nthere" and data["ts"].endswith("Z")


def test_an_app_handler_gets_the_records_and_ensure_handler_leaves_it_alone() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger(logs.ROOT)
    logger.handlers[:] = []
    app = Keep()
    logger.addHandler(app)
    logger.setLevel(logging.INFO)
    logs.ensure_handler()
    assert logger.handlers == [app]
    logs.emit(logs.get_logger("scheduler"), "tick", fields={"n": 1})
    (record,) = seen
    assert record.getMessage() == "tick" and record.name == "jobbench.scheduler"
    assert record.fields == {"n": 1} and record.process and record.created  # type: ignore[attr-defined]
    assert logging.Formatter("%(levelname)s %(name)s %(message)s").format(record) == (
        "INFO jobbench.scheduler tick"
    )


def test_configure_refuses_an_unknown_format() -> None:
    from jobbench.errors import ConfigError

    with pytest.raises(ConfigError, match="text, json"):
        logs.configure("xml")


def test_exception_of_reads_the_last_traceback_line() -> None:
    tb = 'Traceback (most recent call last):\n  File "x", line 1\nmod.sub.BadThing: no: really\n'
    assert exception_of(tb) == ("BadThing", "no: really")
    assert exception_of("Traceback (most recent call last):\nKeyError\n") == ("KeyError", "")
    assert exception_of("refused: not allowed") == (None, "refused: not allowed")
    assert exception_of(None) == (None, "")


def test_job_end_line_and_fields() -> None:
    line, fields = job_end(
        "s1::j", "app.f", "short", 10.0, ["failed", 10.25, "ValueError", "bad", 2, 3, 4.0]
    )
    assert line == "short: app.f (s1::j) failed in 0.250 s: ValueError: bad; retry 2/3 in 4 s"
    assert fields == {
        "job_id": "s1::j",
        "method": "app.f",
        "queue": "short",
        "site": "s1",
        "duration": 0.25,
        "outcome": "failed",
        "exc_type": "ValueError",
        "exc_message": "bad",
        "retry": 2,
        "retries": 3,
        "retry_in": 4.0,
    }
    assert job_end("s1::j", "app.f", "q", None, "finished")[0] == "q: app.f (s1::j) finished"
