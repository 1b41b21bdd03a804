"""Artifacts: a content digest per file, for tasks that fingerprint by content.

The cache look-up compares each recorded file's size (and this digest when recorded) with
the file on disk, so a deleted, truncated or rewritten artifact reruns its node.

Revision ID: 0005_core_artifact_digest
Revises: 0004_core_run_owner
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_core_artifact_digest"
down_revision = "0004_core_run_owner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("digest", sa.String(80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("digest")
