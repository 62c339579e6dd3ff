"""The database trigger that keeps a job type's next run following ``last_execution``.

Frappe code changes ``last_execution`` in many ways: ``doc.save()``, ``doc.db_set``,
``frappe.db.set_value``, raw SQL. Only the first runs our code. So ``migrate`` installs a
trigger on ``tabScheduled Job Type``: an UPDATE that changes ``last_execution``,
``frequency`` or ``cron_format`` without also writing ``next_run_at`` and ``last_run_at``
(which our own writers always do) sets ``next_run_at`` and ``next_execution`` to NULL. The
scheduler's tick reads rows whose ``next_run_at`` is due *or NULL* through the same index, so
it re-derives exactly the changed rows at its next tick: the cost of a tick stays
proportional to the job types that are due or changed, never to all of them.
"""

from __future__ import annotations

import sqlalchemy as sa

from jobbench.model.database import Database

NAME = "jb_job_type_reschedule"
TABLE = "tabScheduled Job Type"
_INPUTS = ("last_execution", "frequency", "cron_format")


def _changed(distinct: str, same: str) -> str:
    inputs = " OR ".join(f"NEW.{c} {distinct} OLD.{c}" for c in _INPUTS)
    ours = f"NEW.next_run_at {same} OLD.next_run_at AND NEW.last_run_at {same} OLD.last_run_at"
    return f"({inputs}) AND {ours}"


def _statements(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {NAME}",
            f"CREATE TRIGGER {NAME} AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN {_changed('IS NOT', 'IS')} BEGIN "
            f"UPDATE {table} SET next_run_at = NULL, next_execution = NULL "
            "WHERE name = NEW.name; END",
        ]
    if dialect == "postgresql":
        return [
            f"CREATE OR REPLACE FUNCTION {NAME}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN NEW.next_run_at := NULL; NEW.next_execution := NULL; RETURN NEW; END $$",
            f"DROP TRIGGER IF EXISTS {NAME} ON {table}",
            f"CREATE TRIGGER {NAME} BEFORE UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({_changed('IS DISTINCT FROM', 'IS NOT DISTINCT FROM')}) "
            f"EXECUTE FUNCTION {NAME}()",
        ]
    # MySQL / MariaDB: <=> is the NULL-safe equality
    inputs = " OR ".join(f"NOT (NEW.{c} <=> OLD.{c})" for c in _INPUTS)
    same = "(NEW.next_run_at <=> OLD.next_run_at) AND (NEW.last_run_at <=> OLD.last_run_at)"
    return [
        f"DROP TRIGGER IF EXISTS {NAME}",
        f"CREATE TRIGGER {NAME} BEFORE UPDATE ON {table} FOR EACH ROW BEGIN "
        f"IF ({inputs}) AND {same} THEN "
        "SET NEW.next_run_at = NULL, NEW.next_execution = NULL; END IF; END",
    ]


def install(db: Database) -> None:
    """Create (or replace) the trigger; idempotent, run by every ``migrate``."""
    dialect = db.engine.dialect
    table = dialect.identifier_preparer.quote(TABLE)
    for statement in _statements(dialect.name, table):
        db.execute(sa.text(statement))
