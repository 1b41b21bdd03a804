"""Distributed execution columns on node instances: the mapped item, the worker that ran
the node, its lease and when it was queued; an index for the claim queries.

A Celery worker executes a node from its row alone (``item`` holds the mapped item), renews
``lease_until`` while it runs and records ``worker`` (host:pid); a sweeper re-enqueues a
``running`` node whose lease expired. The index serves "is anything of this node / run
still open" inside the claim transaction.

Revision ID: 0006_core_node_lease
Revises: 0005_core_artifact_digest
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_core_node_lease"
down_revision = "0005_core_artifact_digest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("item", sa.JSON, nullable=True))
        batch.add_column(sa.Column("worker", sa.String(255)))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("queued_at", sa.DateTime(timezone=True)))
    op.create_index("ix_nodes_run_state_name", "nodes", ["run_id", "state", "name"])


def downgrade() -> None:
    op.drop_index("ix_nodes_run_state_name", table_name="nodes")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("queued_at")
        batch.drop_column("lease_until")
        batch.drop_column("worker")
        batch.drop_column("item")
