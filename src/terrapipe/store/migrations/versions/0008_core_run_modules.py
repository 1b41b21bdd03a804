"""The user modules a run's workflow was loaded from, recorded with the run.

``runs resume`` and ``runs cancel`` load the workflow again; a workflow defined in a user
module (``run --module FILE``) is found through this column without ``--module`` again.

Revision ID: 0008_core_run_modules
Revises: 0006_core_node_lease
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_core_run_modules"
down_revision = "0006_core_node_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("modules", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("modules")
