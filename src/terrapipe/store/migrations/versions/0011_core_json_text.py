"""JSON columns that may hold a bare number get TEXT affinity on SQLite.

A column declared ``JSON`` has NUMERIC affinity in SQLite, which turns stored text that
reads as a number into a number: a task's output ``20.0`` came back from the cache as
``20``, and ``12345678901234567891`` as ``1.23456789012346e+19``. With TEXT affinity the
JSON text is kept as written. The columns are rebuilt in place (add, copy, drop, rename:
no table rebuild, so no foreign-key cascade fires). Cache entries already stored as a
number cannot be told apart from what they were, so they are forgotten: the next run
computes them again. PostgreSQL stores JSON as JSON and is left alone.

Revision ID: 0011_core_json_text
Revises: 0010_core_open_nodes_index
"""

from alembic import op

revision = "0011_core_json_text"
down_revision = "0010_core_open_nodes_index"
branch_labels = None
depends_on = None

COLUMNS = (("cache_entries", "outputs"), ("nodes", "item"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DELETE FROM cache_entries WHERE typeof(outputs) IN ('integer', 'real')")
    for table, column in COLUMNS:
        _retype(table, column, "TEXT")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column in COLUMNS:
        _retype(table, column, "JSON")


def _retype(table: str, column: str, declared: str) -> None:
    staging = f"{column}_retyped"
    op.execute(f"ALTER TABLE {table} ADD COLUMN {staging} {declared}")
    op.execute(f"UPDATE {table} SET {staging} = CAST({column} AS TEXT)")
    op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN {staging} TO {column}")
