"""log_error writes an Error Log with the traceback; call() drops kwargs a function refuses."""

from __future__ import annotations

import pytest

import jobbench
from jobbench.errors import ValidationError

HELPERS = """
import jobbench


def strict(a, b=2):
    return (a, b)


def flexible(a, **rest):
    return {"a": a, **rest}


def count_tasks(doctype="Task"):
    return jobbench.db.count(doctype)


not_callable = 42
"""


def raise_and_log(**kwargs):
    try:
        {}["missing-key"]
    except KeyError:
        return jobbench.log_error(**kwargs)


def test_log_error_records_the_current_traceback(ctx, peek):
    doc = raise_and_log(title="Import failed", reference_doctype="Task", reference_name="T-1")
    jobbench.db.commit()
    stored = peek(lambda: jobbench.get_doc("Error Log", doc.name))
    assert stored.method == "Import failed"
    assert stored.error.startswith("Traceback (most recent call last):")
    assert "raise_and_log" in stored.error
    assert "KeyError: 'missing-key'" in stored.error
    assert (stored.reference_doctype, stored.reference_name) == ("Task", "T-1")
    assert stored.seen is False
    assert stored.owner == "Administrator"


def test_log_error_titles_and_explicit_messages(ctx):
    untitled = raise_and_log()
    assert untitled.method == "KeyError: 'missing-key'"  # the last line of the traceback

    explicit = jobbench.log_error("Nightly sync", "3 records skipped")
    assert (explicit.method, explicit.error) == ("Nightly sync", "3 records skipped")

    outside = jobbench.log_error()  # no exception being handled
    assert (outside.method, outside.error) == ("Error", "")

    long_title = jobbench.log_error("t" * 400, "x")
    assert jobbench.db.get_value("Error Log", long_title.name, "method") == "t" * 255
    assert jobbench.db.count("Error Log") == 4


def test_call_drops_kwargs_the_function_does_not_accept(ctx, make_app):
    make_app("capp", helpers=HELPERS)
    jobbench.new_doc("Task", subject="counted").insert()

    assert jobbench.call("capp.helpers.strict", a=1, c=3, d=4) == (1, 2)
    assert jobbench.call("capp.helpers.strict", a=1, b=5, zzz=0) == (1, 5)
    assert jobbench.call("capp.helpers.flexible", a=1, c=3) == {"a": 1, "c": 3}
    assert jobbench.call("capp.helpers.count_tasks", unrelated=True) == 1
    assert jobbench.call(lambda: "no args", anything=1) == "no args"
    assert jobbench.call(lambda x, y=0: x + y, x=2, y=3, z=4) == 5
    assert jobbench.call(lambda x: x, 7) == 7  # positional arguments are passed as given

    with pytest.raises(ValidationError, match="capp.helpers.nope"):
        jobbench.call("capp.helpers.nope")
    with pytest.raises(ValidationError, match="no_such_module"):
        jobbench.call("no_such_module.fn")
    with pytest.raises(ValidationError, match="not callable"):
        jobbench.call("capp.helpers.not_callable")
    with pytest.raises(TypeError):
        jobbench.call("capp.helpers.strict", b=1)  # a required argument is still required
