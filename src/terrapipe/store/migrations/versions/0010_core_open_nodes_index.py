"""Node indexes for the claim queries: an index of the *open* nodes only, and none twice.

``ix_nodes_run_state_name`` (run, state, name) held every node ever recorded, so the
celery engine's "is anything of this run (node) still open" read past every finished
entry, and on a table without statistics (a new database, the first big run) PostgreSQL
took it for the per-node ``UPDATE ... WHERE run_id = ? AND key = ?`` and filtered the whole
run for each node. ``ix_nodes_open`` (run, name) holds only pending, queued and running
nodes: those questions read a few entries however many nodes finished, the sweeper's
scans (expired leases, unsent messages) read only open nodes instead of the whole table,
and the single-node statements are left to the unique (run, key) index.
``ix_nodes_run_id`` goes: the unique (run_id, key) index serves the same look-ups.
``ix_nodes_cache_key`` holds only nodes with a key: a node is written five times on its
way (inserted, claimed, started, recorded), and only the last has one.

Revision ID: 0010_core_open_nodes_index
Revises: 0009_core_run_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_core_open_nodes_index"
down_revision = "0009_core_run_indexes"
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('pending', 'queued', 'running')")
KEYED = sa.text("cache_key IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_nodes_run_state_name", table_name="nodes")
    op.drop_index("ix_nodes_run_id", table_name="nodes")
    op.create_index(
        "ix_nodes_open", "nodes", ["run_id", "name"], postgresql_where=OPEN, sqlite_where=OPEN
    )
    op.drop_index("ix_nodes_cache_key", table_name="nodes")
    op.create_index(
        "ix_nodes_cache_key", "nodes", ["cache_key"], postgresql_where=KEYED, sqlite_where=KEYED
    )


def downgrade() -> None:
    op.drop_index("ix_nodes_cache_key", table_name="nodes")
    op.create_index("ix_nodes_cache_key", "nodes", ["cache_key"])
    op.drop_index("ix_nodes_open", table_name="nodes")
    op.create_index("ix_nodes_run_id", "nodes", ["run_id"])
    op.create_index("ix_nodes_run_state_name", "nodes", ["run_id", "state", "name"])
