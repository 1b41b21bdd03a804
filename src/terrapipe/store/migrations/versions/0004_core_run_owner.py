"""Run owner: host, pid and process start time of the process executing a run.

Lets a reader tell a live ``running`` run from one whose process was killed, and mark the
latter ``interrupted`` (see terrapipe.core.owner).

Revision ID: 0004_core_run_owner
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_core_run_owner"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner_host", sa.String(255)))
        batch.add_column(sa.Column("owner_pid", sa.Integer))
        batch.add_column(sa.Column("owner_started", sa.String(80)))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("owner_started")
        batch.drop_column("owner_pid")
        batch.drop_column("owner_host")
