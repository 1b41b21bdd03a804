"""Published layers.

Revision ID: 0003_layers
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_layers"
down_revision = None
branch_labels = ("layers",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "layers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("layer_version", sa.Integer, nullable=False),
        sa.Column("algorithm_version", sa.String(50), nullable=False),
        sa.Column("workflow", sa.String(200), nullable=False),
        sa.Column("roi_slug", sa.String(200), nullable=False),
        sa.Column("roi", sa.JSON, nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("stac_item", sa.Text),
        sa.Column("publication", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_layers_name"),
    )
    op.create_index("ix_layers_dataset_roi", "layers", ["dataset", "roi_slug"])


def downgrade() -> None:
    op.drop_index("ix_layers_dataset_roi", "layers")
    op.drop_table("layers")
