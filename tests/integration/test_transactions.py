"""Transactions on real databases: commit, rollback, savepoints, atomic(), callback managers.

What is "committed" is always checked from a second site context, which has its own
connection and so sees only committed rows.
"""

from __future__ import annotations

import pytest

import jobbench


def add_note(title: str) -> None:
    jobbench.new_doc("Note", title=title).insert()


def titles() -> list[str]:
    return jobbench.get_all("Note", pluck="name", order_by="name")


def test_commit_persists_and_uncommitted_work_is_invisible_elsewhere(ctx, peek):
    add_note("a")
    assert titles() == ["a"]  # this connection sees its own work
    assert peek(titles) == []  # others do not, yet
    jobbench.db.commit()
    assert peek(titles) == ["a"]
    jobbench.db.commit()  # a commit with nothing pending is fine
    assert peek(titles) == ["a"]


def test_rollback_discards_everything_since_the_last_commit(ctx, peek):
    add_note("kept")
    jobbench.db.commit()
    add_note("dropped")
    jobbench.db.set_value("Note", "kept", "body", "changed")
    jobbench.db.rollback()
    assert titles() == ["kept"]
    assert jobbench.db.get_value("Note", "kept", "body") is None
    jobbench.db.commit()
    assert peek(titles) == ["kept"]


def test_leaving_a_site_context_does_not_commit(site, bench, peek):
    with jobbench.site_context(site, bench.path):
        add_note("never")
    assert peek(titles) == []


def test_rollback_to_a_savepoint_keeps_earlier_work(ctx, peek):
    add_note("before")
    jobbench.db.savepoint("sp_one")
    add_note("after")
    jobbench.db.set_value("Note", "before", "body", "changed after the savepoint")
    jobbench.db.rollback(save_point="sp_one")
    assert titles() == ["before"]
    assert jobbench.db.get_value("Note", "before", "body") is None
    add_note("later")  # the transaction goes on
    jobbench.db.commit()
    assert peek(titles) == ["before", "later"]


def test_nested_savepoints_and_release(ctx, peek):
    add_note("n0")
    jobbench.db.savepoint("outer")
    add_note("n1")
    jobbench.db.savepoint("inner")
    add_note("n2")
    jobbench.db.rollback(save_point="inner")
    jobbench.db.release_savepoint("outer")
    jobbench.db.commit()
    assert peek(titles) == ["n0", "n1"]
    with pytest.raises(ValueError, match="savepoint"):
        jobbench.db.savepoint("bad name; DROP TABLE x")


def test_atomic_undoes_only_the_failed_block(ctx, peek):
    add_note("first")
    with pytest.raises(RuntimeError, match="boom"), jobbench.db.atomic():
        add_note("inside")
        raise RuntimeError("boom")
    with jobbench.db.atomic():
        add_note("second")
        with pytest.raises(KeyError), jobbench.db.atomic():
            add_note("nested")
            raise KeyError("inner")
        add_note("third")
    assert titles() == ["first", "second", "third"]
    jobbench.db.commit()
    assert peek(titles) == ["first", "second", "third"]


def test_after_commit_runs_in_order_after_the_commit(ctx, site, bench):
    seen: list[tuple[str, list[str]]] = []

    def callback(label: str):
        def run() -> None:
            # a second connection already sees the row: the COMMIT has happened
            with jobbench.site_context(site, bench.path):
                seen.append((label, titles()))

        return run

    add_note("x")
    jobbench.db.after_commit.add(callback("one"))
    jobbench.db.after_commit.add(callback("two"))
    jobbench.db.after_commit.add(callback("three"))
    assert seen == []  # nothing runs before the commit
    assert jobbench.local.site == site
    jobbench.db.commit()
    assert seen == [("one", ["x"]), ("two", ["x"]), ("three", ["x"])]
    jobbench.db.commit()  # callbacks run once
    assert len(seen) == 3


def test_after_commit_callbacks_all_run_and_the_first_error_is_raised(ctx, peek):
    order: list[str] = []

    def fail(label: str):
        def run() -> None:
            order.append(label)
            raise RuntimeError(label)

        return run

    add_note("y")
    jobbench.db.after_commit.add(fail("first"))
    jobbench.db.after_commit.add(lambda: order.append("ok"))
    jobbench.db.after_commit.add(fail("second"))
    with pytest.raises(RuntimeError, match="first"):
        jobbench.db.commit()
    assert order == ["first", "ok", "second"]
    assert peek(titles) == ["y"]  # the commit itself happened


def test_rollback_discards_pending_after_commit_callbacks(ctx):
    ran: list[str] = []
    add_note("z")
    jobbench.db.after_commit.add(lambda: ran.append("after_commit"))
    jobbench.db.before_commit.add(lambda: ran.append("before_commit"))
    jobbench.db.rollback()
    jobbench.db.commit()
    assert ran == []


def test_rollback_to_a_savepoint_keeps_callbacks(ctx):
    ran: list[str] = []
    jobbench.db.savepoint("sp")
    jobbench.db.after_commit.add(lambda: ran.append("after_commit"))
    jobbench.db.rollback(save_point="sp")
    jobbench.db.commit()
    assert ran == ["after_commit"]


def test_before_commit_runs_before_the_commit(ctx, site, bench, peek):
    seen: list[tuple[str, list[str]]] = []

    def before() -> None:
        with jobbench.site_context(site, bench.path):
            seen.append(("before_commit", titles()))
        add_note("added by before_commit")  # still part of the committing transaction

    add_note("w")
    jobbench.db.before_commit.add(before)
    jobbench.db.after_commit.add(lambda: seen.append(("after_commit", [])))
    assert seen == []
    jobbench.db.commit()
    assert seen == [("before_commit", []), ("after_commit", [])]
    assert peek(titles) == ["added by before_commit", "w"]


def test_a_raising_before_commit_prevents_the_commit(ctx, peek):
    ran: list[str] = []

    def refuse() -> None:
        raise RuntimeError("not now")

    add_note("blocked")
    jobbench.db.before_commit.add(refuse)
    jobbench.db.after_commit.add(lambda: ran.append("after_commit"))
    with pytest.raises(RuntimeError, match="not now"):
        jobbench.db.commit()
    assert ran == []
    assert peek(titles) == []
    jobbench.db.rollback()
    jobbench.db.commit()
    assert ran == []
    assert peek(titles) == []


def test_rollback_callbacks_run_around_the_rollback(ctx):
    seen: list[tuple[str, list[str]]] = []
    add_note("v")
    jobbench.db.before_rollback.add(lambda: seen.append(("before_rollback", titles())))
    jobbench.db.after_rollback.add(lambda: seen.append(("after_rollback", titles())))
    jobbench.db.after_rollback.add(lambda: seen.append(("after_rollback 2", [])))
    assert seen == []
    jobbench.db.rollback()
    assert seen == [("before_rollback", ["v"]), ("after_rollback", []), ("after_rollback 2", [])]
    jobbench.db.rollback()  # run once
    assert len(seen) == 3


def test_a_commit_discards_pending_rollback_callbacks(ctx):
    ran: list[str] = []
    add_note("u")
    jobbench.db.before_rollback.add(lambda: ran.append("before_rollback"))
    jobbench.db.after_rollback.add(lambda: ran.append("after_rollback"))
    jobbench.db.commit()
    jobbench.db.rollback()
    assert ran == []


def test_callbacks_belong_to_their_site_context(ctx, site, bench):
    ran: list[str] = []
    jobbench.db.after_commit.add(lambda: ran.append("outer"))
    with jobbench.site_context(site, bench.path):
        jobbench.db.commit()  # another context's commit runs none of ours
        assert ran == []
    jobbench.db.commit()
    assert ran == ["outer"]


def test_begin_write_lets_a_read_then_write_wait_instead_of_failing_on_sqlite(ctx, peek, db_url):
    """A deferred SQLite transaction that read before another connection committed cannot
    write any more ("database is locked" at once); after begin_write() it holds the write
    lock from its first read, so the other writer waits and both writes land. On servers
    begin_write() changes nothing (row locks)."""
    from jobbench.errors import LockWaitTimeoutError

    add_note("base")
    jobbench.db.commit()

    def other_writer() -> None:
        add_note("other")
        jobbench.db.commit()

    titles()  # a read: the snapshot starts here
    peek(other_writer)  # another connection commits past it
    if db_url.startswith("sqlite"):
        with pytest.raises(LockWaitTimeoutError):
            add_note("stale")
        jobbench.db.rollback()
    else:
        add_note("stale")
        jobbench.db.commit()

    jobbench.db.begin_write()
    assert "other" in titles()  # read under the write lock...
    add_note("fresh")  # ...then write: no stale snapshot possible
    jobbench.db.commit()
    assert "fresh" in peek(titles)
