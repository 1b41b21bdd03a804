"""URL user info from a STAC item never reaches the catalog's URI table (issue 10, item 10)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from shapely.geometry import box

from terrapipe.catalog import Dataset, DatasetURI, save_datasets
from terrapipe.catalog.harvest import harvest

SECRETS = ("alice", "s3cret-pw", "ghp_T0KEN42")


def _item(tmp_path: Path) -> Path:
    doc = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "scene-1",
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[5, 45], [6, 45], [6, 46], [5, 46], [5, 45]]],
        },
        "bbox": [5, 45, 6, 46],
        "properties": {"datetime": "2024-06-01T00:00:00Z"},
        "links": [],
        "assets": {
            "data": {
                "href": "https://alice:s3cret-pw@data.example.org:8443/s/a.tif?x=1",
                "roles": ["data"],
            },
            "meta": {"href": "https://ghp_T0KEN42@data.example.org/s/a.xml", "roles": ["metadata"]},
            "plain": {"href": "https://data.example.org/s/b.tif", "roles": ["data"]},
        },
    }
    path = tmp_path / "item.json"
    path.write_text(json.dumps(doc))
    return path


def _uri_rows(db_url: str) -> list[tuple]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM dataset_uris"))]
    finally:
        engine.dispose()


def test_stac_userinfo_is_dropped_before_storage_with_a_warning(
    db, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="terrapipe.catalog"):
        report = harvest(db, _item(tmp_path))
    assert (report.added, report.failed) == (1, 0)

    rows = _uri_rows(db_url)
    stored = sorted(str(v) for row in rows for v in row if isinstance(v, str))
    assert not [v for v in stored if any(s in v for s in SECRETS)], stored
    assert "https://data.example.org:8443/s/a.tif?x=1" in stored
    assert "https://data.example.org/s/a.xml" in stored
    assert "https://data.example.org/s/b.tif" in stored

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("user info" in w for w in warnings)
    assert "data.example.org:8443" in warnings[0]
    assert not any(s in w for w in warnings for s in SECRETS)


def test_python_save_path_strips_userinfo_too(db, db_url: str) -> None:
    uri = DatasetURI(uri="ftp://bob:pa55word@ftp.example.org/pub/x.tif")
    save_datasets(db, [Dataset(entry_id="x", footprint=box(0, 0, 1, 1), uris=(uri,))])
    values = [v for row in _uri_rows(db_url) for v in row if isinstance(v, str)]
    assert "ftp://ftp.example.org/pub/x.tif" in values
    assert not any("pa55word" in v or "bob" in v for v in values)
