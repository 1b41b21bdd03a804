"""Alembic environment: always run with a connection handed over by ``Database.migrate``."""

from alembic import context

from terrapipe.store.db import load_tables

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - alembic CLI use
    raise SystemExit("run migrations through terrapipe.store.Database.migrate()")

context.configure(connection=connection, target_metadata=load_tables(), render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
