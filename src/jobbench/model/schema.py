"""Create and extend tables so they match the doctypes: what ``jobbench migrate`` does to SQL.

Migration only ever adds: a missing table is created, a missing column is added (nullable, so
existing rows stay valid), a missing index is created. Nothing is dropped or retyped; a column
whose type changed in code keeps its old SQL type (written in docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from jobbench.model.database import translate
from jobbench.model.meta import INTERNAL_TABLES

if TYPE_CHECKING:
    from jobbench.model.database import Database
    from jobbench.model.meta import DocMeta


@dataclass
class SchemaChanges:
    """What one migration did, for the CLI to report."""

    created_tables: list[str] = field(default_factory=list)
    added_columns: list[str] = field(default_factory=list)
    created_indexes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.created_tables or self.added_columns or self.created_indexes)


def sync_tables(
    db: Database, metas: Iterable[DocMeta], extra_tables: Iterable[sa.Table] = ()
) -> SchemaChanges:
    """Bring the database in line with the doctypes (and ``extra_tables``, tables of layers
    above that are no doctype: the job outbox), inside the current transaction.

    On MySQL/MariaDB DDL commits implicitly; migration is additive, so re-running it after a
    failure completes the job."""
    changes = SchemaChanges()
    tables = [*INTERNAL_TABLES, *extra_tables, *(m.table for m in metas if not m.issingle)]
    try:
        for table in tables:
            _sync_table(db, table, changes)
    except DBAPIError as exc:
        raise translate(exc, db.engine.url) from exc
    return changes


def _sync_table(db: Database, table: sa.Table, changes: SchemaChanges) -> None:
    conn = db.conn
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name):
        table.create(conn)
        changes.created_tables.append(table.name)
        return
    existing = {c["name"] for c in inspector.get_columns(table.name)}
    for col in table.columns:
        if col.name not in existing:
            _add_column(db, table, col)
            changes.added_columns.append(f"{table.name}.{col.name}")
    indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
    indexes |= {uc["name"] for uc in inspector.get_unique_constraints(table.name)}
    for index in table.indexes:
        if index.name not in indexes:
            index.create(conn)
            changes.created_indexes.append(str(index.name))


def _add_column(db: Database, table: sa.Table, col: sa.Column[Any]) -> None:
    dialect = db.engine.dialect
    preparer = dialect.identifier_preparer
    col_type = col.type.compile(dialect=dialect)
    db.execute(
        sa.text(
            f"ALTER TABLE {preparer.format_table(table)} "
            f"ADD COLUMN {preparer.format_column(col)} {col_type}"
        )
    )
