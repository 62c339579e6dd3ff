"""The transactional outbox: after-commit (and durable) jobs live in the site database until the
broker has them (docs/reliability.md, "The outbox").

``enqueue(..., enqueue_after_commit=True)`` (or ``durable=True``, or the ``durable_enqueue``
config key) builds and signs the job's record as any enqueue does, then INSERTs it into the
site's ``__job_outbox`` table inside the caller's transaction: a rollback (also to a savepoint)
takes it back with the caller's data, a commit keeps both. Right after the commit the
committing process relays the site's rows to the broker; if the broker is down the commit
still succeeds (one warning per outage) and the rows wait. Every worker executor and every
scheduler polls the outbox of its bench's sites once a second (``OutboxRelay``), and
``jobbench outbox flush`` relays on demand.

**One relay per site at a time, in insertion order.** A relay holds the broker lease
``outbox:<site>`` while it delivers; the others skip the site. Rows go out in ``seq`` order
and a row that cannot be delivered stops the pass, so a later job never overtakes an earlier
one. (``SELECT ... FOR UPDATE SKIP LOCKED`` would let relays share a site but not keep the
order, and SQLite has no row locks; a lease works the same on every database.)

**Exactly once, by job id.** The job id is decided at enqueue time and stored with the signed
record. A relay deletes rows once the broker has answered for them; before delivering a row it
asks the broker whether it holds that very record already (same id, ``enqueued_at`` and
signature: a relay died between the broker's answer and the DELETE, or the answer was lost)
and then only deletes the row. One broker read per row; the usual redelivery is a no-op. The
one case left is a row outliving its delivered job's record (run, then expired after
``rq_results_ttl``, 600 s by default, or deleted) before any relay came back to it: it is
delivered again. We chose this over a broker once-key per job, which would close that gap but
keep a key for every after-commit job for seven days (``ONCE_TTL``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from jobbench.bench import Bench
from jobbench.brokers.base import Broker
from jobbench.brokers.factory import get_broker
from jobbench.context import SiteLocal, site_context
from jobbench.errors import BrokerError, BrokerUnavailable, JobbenchError, JobError
from jobbench.jobs.job import Job
from jobbench.jobs.outbox_table import TABLE as TABLE
from jobbench.jobs.outbox_table import OutboxStats as OutboxStats
from jobbench.jobs.outbox_table import dump_record, missing_table, stats
from jobbench.jobs.outbox_table import load_record as load_record
from jobbench.jobs.outbox_table import rows as rows
from jobbench.jobs.outbox_table import stats_or_reason as stats_or_reason
from jobbench.jobs.outbox_table import warnings as warnings
from jobbench.jobs.record import JobRecord
from jobbench.model.database import Database, get_engine, translate

log = logging.getLogger("jobbench.outbox")

LEASE_TTL = 30.0  # a relay that dies holding a site's lease delays that site this long
BATCH = 100
POLL_INTERVAL = 1.0
COMMIT_BACKOFF = 5.0  # after a failed relay at commit, later commits leave it to the pollers
COMMIT_LIMIT = 10 * BATCH  # a commit relays at most this many (a backlog is the pollers')


class OutboxMissing(JobError):  # noqa: N818 - pairs with the other JobError names
    """The site database has no outbox table: ``migrate`` has not run since jobbench gained it."""


# -- writing, in the caller's transaction --------------------------------------------------
def wanted(conf: Any, enqueue_after_commit: bool, durable: bool | None) -> bool:
    """Whether this enqueue goes through the outbox: every after-commit job; a plain one with
    ``durable=True``, or with ``durable`` unset and the ``durable_enqueue`` config key on."""
    if enqueue_after_commit:
        return True
    if durable is None:
        return bool(conf.get("durable_enqueue"))
    return bool(durable)


def add(
    local: SiteLocal,
    record: JobRecord,
    opts: Any,
    kwargs: dict[str, Any],
    run_at: float | None,
    secret: str,
) -> Job | None:
    """Write the job into the outbox in the current transaction; relay it after the commit.

    An after-commit job returns None (as before). A durable job returns its Job handle (its
    id is final; the broker has it once relayed); outside a transaction there is nothing to
    be atomic with, so its row is committed at once and relayed now."""
    db = local.db
    standalone = not opts.enqueue_after_commit and not db.in_transaction()
    _require_table(db)
    if standalone and db.in_transaction():
        db.conn.rollback()  # the table check's read: start the write afresh (SQLite snapshots)
    db.execute(sa.insert(TABLE).values(**_row(record, opts, kwargs, run_at)))
    if standalone:
        try:
            db.conn.commit()  # the connection's own commit: no caller callbacks run early
        except DBAPIError as exc:
            raise translate(exc, db.engine.url) from exc
        relay_after_commit(local, limit=COMMIT_LIMIT)
    else:
        _hook(local)
    if opts.enqueue_after_commit:
        return None
    return Job(record, get_broker(local.bench, local.conf), secret)


def add_many(local: SiteLocal, items: list[tuple[JobRecord, Any, dict[str, Any], Any]]) -> None:
    """``enqueue_many(..., enqueue_after_commit=True)``: one row per job, in the batch's order,
    in the current transaction; relayed after the commit, each as its own enqueue."""
    db = local.db
    _require_table(db)
    rows = [_row(record, opts, kwargs, run_at) for record, opts, kwargs, run_at in items]
    if rows:
        db.execute(sa.insert(TABLE), rows)
        _hook(local)


def _hook(local: SiteLocal) -> None:
    if not any(isinstance(fn, _RelayHook) for fn in local.db.after_commit):
        local.db.after_commit.add(_RelayHook(local))


class _RelayHook:
    """The after-commit relay: one per transaction, however many jobs it adds."""

    __slots__ = ("local",)

    def __init__(self, local: SiteLocal) -> None:
        self.local = local

    def __call__(self) -> None:
        relay_after_commit(self.local, limit=COMMIT_LIMIT)


_tables: set[str] = set()


def _require_table(db: Database) -> None:
    """Refuse (before anything is written) a site whose database predates the outbox."""
    if db.db_url in _tables:
        return
    try:
        present = sa.inspect(db.conn).has_table(TABLE.name)
    except DBAPIError as exc:
        raise translate(exc, db.engine.url) from exc
    if not present:
        raise OutboxMissing(
            f"the site database {db.engine.url.render_as_string(hide_password=True)} has no "
            f"outbox table ({TABLE.name}) for after-commit and durable jobs; run "
            "'jobbench --site SITE migrate' to create it"
        )
    _tables.add(db.db_url)


def _row(
    record: JobRecord, opts: Any, kwargs: dict[str, Any], run_at: float | None
) -> dict[str, Any]:
    extra: dict[str, Any] = {"options": _plain_options(opts), "run_at": run_at}
    if opts.track_job:  # the Background Task shows the arguments; a display copy suffices
        extra["task_kwargs"] = json.loads(json.dumps(kwargs, default=str))
    return {
        "job_id": record.id,
        "created": record.enqueued_at,
        "record": dump_record(record),
        "options": json.dumps(extra),
    }


_PLAIN = (str, int, float, bool, type(None))
_IN_RECORD = frozenset({"on_success", "on_failure", "depends_on"})  # set on the signed record


def _plain_options(opts: Any) -> dict[str, Any]:
    """The enqueue options as plain data. An option whose value is not plain data (and not
    its default) is refused rather than dropped: the relay could not apply it."""
    out: dict[str, Any] = {}
    for f in fields(opts):
        value = getattr(opts, f.name)
        if f.name in _IN_RECORD:
            continue
        if isinstance(value, _PLAIN):
            out[f.name] = value
        elif value != f.default:
            raise JobError(
                f"option {f.name}={value!r} cannot be kept in the outbox (after-commit and "
                "durable jobs); pass plain data, or enqueue without enqueue_after_commit/durable"
            )
    return out


# -- relaying --------------------------------------------------------------------------------
_owners = threading.local()


def owner() -> str:
    """This thread's name as a lease owner (made again after a fork): two threads of one
    process committing at once (a threaded web server) must not share a site's lease."""
    mine: tuple[int, str] | None = getattr(_owners, "name", None)
    if mine is None or mine[0] != os.getpid():
        where = f"{socket.gethostname()}.{os.getpid()}.{threading.get_ident()}"
        mine = (os.getpid(), f"outbox.{where}.{uuid.uuid4().hex[:6]}")
        _owners.name = mine
    return mine[1]


def lease_name(site: str) -> str:
    return f"outbox:{site}"


@dataclass
class RelayResult:
    delivered: int = 0  # rows the broker took now (or had taken: a redelivery's no-op)
    left: int = 0  # rows still waiting after the pass
    busy: bool = False  # another relay holds the site's lease


@contextlib.contextmanager
def _connection(engine: Engine) -> Iterator[Connection]:
    """A connection of its own: the caller's may be mid-callback, and a commit on it would
    run the caller's other after-commit callbacks."""
    try:
        with engine.connect() as conn:
            yield conn
    except DBAPIError as exc:
        raise translate(exc, engine.url) from exc


def relay_site(local: SiteLocal, limit: int | None = None, known: bool = False) -> RelayResult:
    """Deliver the site's outbox rows in order under its lease (``known``: the caller just
    committed rows, skip the first look). Raises BrokerError when the broker cannot be reached
    (the rows stay) and DatabaseError when the database cannot.

    After giving the lease back it looks once more: a committer that found the lease held
    while this relay was finishing has left its rows to it."""
    engine = local.db.engine
    result = RelayResult()
    broker = get_broker(local.bench, local.conf)
    name, me = lease_name(local.site), owner()
    with _connection(engine) as conn:
        while limit is None or result.delivered < limit:
            if not known and not _any(conn):
                return result
            known = False
            if not broker.acquire_lease(name, me, LEASE_TTL):
                result.busy = True
                return result
            try:
                result.delivered += _drain(local, broker, conn, limit, result.delivered)
            finally:
                with contextlib.suppress(BrokerError):
                    broker.release_lease(name, me)
    return result


def _drain(local: SiteLocal, broker: Broker, conn: Connection, limit: int | None, done: int) -> int:
    """Batches of rows until a batch is not full (or ``limit``); the lease renewed between."""
    delivered = 0
    while limit is None or done + delivered < limit:
        n = BATCH if limit is None else min(BATCH, limit - done - delivered)
        rows = _read(conn, n)
        delivered += _deliver_batch(local, broker, conn, rows)
        if len(rows) < n or not broker.acquire_lease(lease_name(local.site), owner(), LEASE_TTL):
            break  # done, or the lease lapsed and another relay goes on in order
    return delivered


def _any(conn: Connection) -> bool:
    found = conn.execute(sa.select(TABLE.c.seq).limit(1)).first() is not None
    conn.commit()
    return found


def _read(conn: Connection, n: int) -> list[Any]:
    rows = conn.execute(sa.select(TABLE).order_by(TABLE.c.seq).limit(n)).all()
    conn.commit()  # end the read: a write after it starts its own transaction (SQLite)
    return list(rows)


def _deliver_batch(local: SiteLocal, broker: Broker, conn: Connection, rows: list[Any]) -> int:
    """Deliver ``rows`` in order; stop at the first that fails (its error noted on it). The
    delivered rows are deleted together at the end (a crash before that redelivers them,
    which ``_deliver`` makes a no-op)."""
    done: list[int] = []
    try:
        for row in rows:
            try:
                _deliver(local, broker, row)
            except Exception as exc:
                _note_failure(conn, row, exc)
                raise
            done.append(row.seq)
    finally:
        if done:
            conn.execute(sa.delete(TABLE).where(TABLE.c.seq.in_(done)))
            conn.commit()
    return len(done)


def _deliver(local: SiteLocal, broker: Broker, row: Any) -> None:
    from jobbench.jobs.enqueue import EnqueueOptions, push

    record = load_record(row.record)
    extra = json.loads(row.options)
    if _already_delivered(broker, record):  # an earlier relay got this far, then died
        return
    known = {f.name for f in fields(EnqueueOptions)}
    options = {k: v for k, v in extra["options"].items() if k in known}
    opts = replace(EnqueueOptions(**options), enqueue_after_commit=False, durable=False)
    push(local, record, opts, extra.get("task_kwargs") or {}, extra.get("run_at"))


def _already_delivered(broker: Broker, record: JobRecord) -> bool:
    """The broker holds this very record (same id, enqueue time and signature)."""
    stored = broker.get(record.id)
    return (
        stored is not None
        and stored.signature == record.signature
        and stored.enqueued_at == record.enqueued_at
    )


def _note_failure(conn: Connection, row: Any, exc: Exception) -> None:
    """Record why the row is still waiting (doctor and ``outbox list`` show it)."""
    message = f"{type(exc).__name__}: {exc}"[:2000]
    with contextlib.suppress(DBAPIError):
        conn.rollback()
        conn.execute(
            sa.update(TABLE)
            .where(TABLE.c.seq == row.seq)
            .values(attempts=TABLE.c.attempts + 1, last_error=message, last_attempt=time.time())
        )
        conn.commit()


class _CommitState:
    """The committing process' memory of a broker outage: warn once, back off a little."""

    skip_until = 0.0
    warned = False


def relay_after_commit(local: SiteLocal, limit: int | None = None) -> None:
    """Relay the site's rows now that the caller committed. Never raises: the commit stands;
    rows that could not go wait for a poller or ``jobbench outbox flush``."""
    if time.monotonic() < _CommitState.skip_until:
        return
    try:
        relay_site(local, limit, known=True)
    except Exception as exc:  # noqa: BLE001 - the caller's commit succeeded; the row waits
        _CommitState.skip_until = time.monotonic() + COMMIT_BACKOFF
        if not _CommitState.warned:
            _CommitState.warned = True
            log.warning(
                "could not relay after-commit jobs of site %s to the broker (%s); they wait in "
                "the outbox and a worker, the scheduler or 'jobbench outbox flush' delivers "
                "them once the broker is back",
                local.site,
                exc,
            )
        return
    _CommitState.warned = False


# -- polling (worker executors, schedulers) -----------------------------------------------------
class OutboxRelay:
    """Relays the outboxes of a bench's sites, at most once per ``POLL_INTERVAL``.

    The idle cost is one indexed ``SELECT seq ... LIMIT 1`` per site per second on a pooled
    connection; a site context is opened only for a site with rows. A site whose relay failed
    waits ``POLL_INTERVAL`` (broker down) or 10 s (anything else) before its next try."""

    SITES_EVERY = 10.0  # how often the list of sites is read again

    def __init__(self, bench: Bench, say: Callable[[str], None] | None = None) -> None:
        self.bench = bench
        self.say = say or (lambda message: log.info("%s", message))
        self._next = 0.0
        self._sites: list[str] = []
        self._sites_at = -1e9
        self._skip: dict[str, float] = {}
        self._failing: dict[str, str] = {}

    def poll(self) -> int:
        now = time.monotonic()
        if now < self._next:
            return 0
        self._next = now + POLL_INTERVAL
        if now - self._sites_at >= self.SITES_EVERY:
            self._sites, self._sites_at = self.bench.list_sites(), now
        return sum(self._poll_site(site, now) for site in self._sites)

    def _poll_site(self, site: str, now: float) -> int:
        if self._skip.get(site, 0.0) > now:
            return 0
        try:
            if not has_rows(self.bench, site):
                return 0
            with site_context(site, self.bench.path) as local:
                result = relay_site(local)
        except BrokerUnavailable as exc:
            self._failed(site, now, POLL_INTERVAL, f"broker unavailable: {exc}")
            return 0
        except Exception as exc:  # noqa: BLE001 - a poller never stops its worker or scheduler
            self._failed(site, now, 10.0, str(exc) if isinstance(exc, JobbenchError) else repr(exc))
            return 0
        if site in self._failing:
            del self._failing[site]
            self.say(f"{site}: outbox relaying again")
        if result.delivered:
            self.say(f"{site}: relayed {result.delivered} job(s) from the outbox")
        return result.delivered

    def _failed(self, site: str, now: float, pause: float, why: str) -> None:
        self._skip[site] = now + pause
        if self._failing.get(site) != why:  # once per distinct reason, not once a second
            self._failing[site] = why
            self.say(f"{site}: outbox not relayed, retrying: {why}")


def has_rows(bench: Bench, site: str) -> bool:
    """Whether the site's outbox holds a row; False for a site without the table (not
    migrated since the outbox came) or whose database is unreachable (relay_site says why)."""
    engine = get_engine(str(bench.merged_config(site)["db_url"]))
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.select(TABLE.c.seq).limit(1)).first() is not None
            conn.rollback()
            return found
    except DBAPIError as exc:
        if missing_table(exc):
            return False
        raise translate(exc, engine.url) from exc


def flush(bench: Bench, site: str, wait: float = 10.0) -> RelayResult:
    """Relay the site's outbox now (``jobbench outbox flush``), waiting up to ``wait`` seconds
    for a relay that holds the site's lease. Raises BrokerError / DatabaseError as relay_site."""
    deadline = time.monotonic() + wait
    with site_context(site, bench.path) as local:
        _require_table(local.db)
        local.db.rollback()
        while True:
            result = relay_site(local)
            if not result.busy or time.monotonic() >= deadline:
                if not result.busy:
                    result.left = stats(bench, site).undelivered
                return result
            time.sleep(0.2)
