"""The download workflow's tasks use the run's store: with ``db=``/``settings=`` the catalog
is read, downloads recorded and locks kept there, and the default database never opened."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from shapely.geometry import box
from transfer_data import write_raster

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import save_datasets
from terrapipe.pipelines.download_crop_convert_publish import build_workflow
from terrapipe.settings import Settings
from terrapipe.store.db import Database


def test_download_workflow_reads_and_records_in_the_given_store(
    http_server, tmp_path: Path, tp_home: Path
) -> None:
    src = tmp_path / "src" / "scene.tif"
    src.parent.mkdir()
    write_raster(src, size=200)
    http_server.state.files[src.name] = src.read_bytes()
    db = Database(f"sqlite:///{tmp_path / 'explicit.db'}")
    try:
        save_datasets(
            db,
            [
                Dataset(
                    entry_id="SCENE",
                    collection="wf",
                    time_start=datetime(2024, 5, 1, tzinfo=UTC),
                    footprint=box(74.9, 17.9, 75.2, 18.1),
                    uris=(DatasetURI(http_server.url("pub", src.name), size=src.stat().st_size),),
                )
            ],
        )
        params = {
            "query": '{"collection": "wf"}',
            "download_directory": str(tmp_path / "dl"),
            "publish_folder": str(tmp_path / "www"),
            "url_prefix": "https://maps.example.org/data",
        }
        settings = Settings(home=tmp_path / "elsewhere")
        run = build_workflow().run(params, workers=2, db=db, settings=settings)
        assert run.state == "succeeded", {n: getattr(v, "error", v) for n, v in run.nodes.items()}
        downloaded = Path(run.nodes["fetch"][0].outputs["path"])
        assert downloaded.read_bytes() == src.read_bytes()
        with db.begin() as conn:  # the run itself was recorded in this database
            tables = sa.inspect(conn).get_table_names()
            assert "runs" in tables
            assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 1
    finally:
        db.dispose()
    assert not (tp_home / "terrapipe.db").exists()
