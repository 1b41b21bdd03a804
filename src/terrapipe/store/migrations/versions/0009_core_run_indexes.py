"""Indexes for the newest runs: of one workflow (the cache history every run reads) and
of all (the job list). Without them each run sorted every earlier run of its workflow,
which slowed the service as jobs piled up.

Revision ID: 0009_core_run_indexes
Revises: 0008_core_run_modules
"""

from alembic import op

revision = "0009_core_run_indexes"
down_revision = "0008_core_run_modules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_workflow_created", "runs", ["workflow", "created_at"])
    op.create_index("ix_runs_created", "runs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_created", table_name="runs")
    op.drop_index("ix_runs_workflow_created", table_name="runs")
