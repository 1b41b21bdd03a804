"""A run's URL inputs and the kind of a run-level error.

``input_urls`` (JSON, input name -> URL): the file inputs of an async job that were given as
URLs. The request records the job at once with each such input's local path as its
parameter; whoever executes the job (the service's job runner, or a background thread of
the server) downloads each URL to that path first. Kept after the run: where its inputs
came from. ``error_kind`` (``input`` or empty) tells a run that failed before any node
ran because of its input (a URL that answered 404) from one that broke, as
``nodes.error_kind`` does for a node: the first is a 4xx for the HTTP service and exit 2
for the CLI.

Revision ID: 0012_core_run_inputs
Revises: 0011_core_json_text
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_core_run_inputs"
down_revision = "0011_core_json_text"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("input_urls", sa.JSON, nullable=True))
        batch.add_column(sa.Column("error_kind", sa.String(10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("error_kind")
        batch.drop_column("input_urls")
