"""Catalog: datasets with footprints (PostGIS geometry + GiST, or WKB + R*Tree) and URIs.

Revision ID: 0002_catalog
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_catalog"
down_revision = None
branch_labels = ("catalog",)
depends_on = None

# The R*Tree holds one box per dataset (rowid 2*id), or two for a bbox crossing the
# antimeridian (west > east: rowids 2*id and 2*id+1). New rows are indexed by their writer
# (terrapipe.catalog.ingest in bulk, an ORM after_insert event otherwise): an insert
# trigger would halve the bulk insert rate. Triggers keep updates and deletes in sync.
_RTREE_ROWS = """
    INSERT INTO datasets_rtree (id, minx, maxx, miny, maxy)
    SELECT NEW.id * 2, NEW.bbox_west,
           CASE WHEN NEW.bbox_west <= NEW.bbox_east THEN NEW.bbox_east ELSE 180.0 END,
           NEW.bbox_south, NEW.bbox_north
    WHERE NEW.bbox_west IS NOT NULL;
    INSERT INTO datasets_rtree (id, minx, maxx, miny, maxy)
    SELECT NEW.id * 2 + 1, -180.0, NEW.bbox_east, NEW.bbox_south, NEW.bbox_north
    WHERE NEW.bbox_west IS NOT NULL AND NEW.bbox_west > NEW.bbox_east;
"""
_RTREE_DELETE = "DELETE FROM datasets_rtree WHERE id IN (OLD.id * 2, OLD.id * 2 + 1);"

SQLITE_DDL = (
    "CREATE VIRTUAL TABLE datasets_rtree USING rtree(id, minx, maxx, miny, maxy)",
    "CREATE TRIGGER datasets_rtree_update AFTER UPDATE OF bbox_west, bbox_south, bbox_east, "
    f"bbox_north ON datasets BEGIN {_RTREE_DELETE} {_RTREE_ROWS} END",
    f"CREATE TRIGGER datasets_rtree_delete AFTER DELETE ON datasets BEGIN {_RTREE_DELETE} END",
)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    json_type = JSONB() if postgres else sa.JSON()
    when = sa.DateTime(timezone=True)
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.String(500), nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("collection", sa.String(200)),
        sa.Column("platform", sa.String(100)),
        sa.Column("instrument", sa.String(100)),
        sa.Column("provider", sa.String(200)),
        sa.Column("time_start", when),
        sa.Column("time_end", when),
        sa.Column("footprint", sa.LargeBinary),  # PostGIS: replaced by a geometry below
        sa.Column("bbox_west", sa.Float),
        sa.Column("bbox_south", sa.Float),
        sa.Column("bbox_east", sa.Float),
        sa.Column("bbox_north", sa.Float),
        sa.Column("properties", json_type, nullable=False),
        sa.Column("harvest_status", sa.String(20), nullable=False),
        sa.Column("harvest_error", sa.Text),
        sa.Column("harvest_source", json_type),
        sa.Column("harvested_at", when),
        sa.UniqueConstraint("entry_id", name="uq_datasets_entry_id"),
    )
    op.create_index("ix_datasets_collection", "datasets", ["collection"])
    op.create_index("ix_datasets_time_start", "datasets", ["time_start"])
    op.create_table(
        "dataset_uris",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id",
            sa.Integer,
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("media_type", sa.String(200)),
        sa.Column("size", sa.BigInteger),
        sa.Column("checksum", sa.String(200)),
        sa.Column("local_path", sa.Text),
    )
    op.create_index("ix_dataset_uris_dataset_id", "dataset_uris", ["dataset_id"])
    if postgres:
        op.execute("ALTER TABLE datasets DROP COLUMN footprint")
        op.execute("ALTER TABLE datasets ADD COLUMN footprint geometry(Geometry, 4326)")
        op.execute("CREATE INDEX ix_datasets_footprint ON datasets USING gist (footprint)")
    else:
        for statement in SQLITE_DDL:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS datasets_rtree")
    op.drop_table("dataset_uris")
    op.drop_table("datasets")
