"""Harvest plain directory listings (issue 9, item 11): HTTP index pages and FTP folders.

Real servers on 127.0.0.1: Python's http.server listing (with Range support added, as
nginx and Apache have) and pyftpdlib. Footprints are checked against rasterio's bounds
of the same files transformed independently (pyproj, 2,000 edge points), and the bytes
the servers sent against the file sizes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin
from shapely.geometry import Polygon, box

from terrapipe.catalog.harvest import harvest, retry_failed
from terrapipe.catalog.harvest.listing import page_links
from terrapipe.catalog.query import count, get_dataset, search

LANDSAT = "LC08_L2SP_193029_20210508_20210517_02_T1_SR_B4.TIF"
SENTINEL = "S2B_MSIL2A_20220612T101559_N0400_R065_T33TUM_20220612T130017.tif"


def _write(path: Path, *, epsg: int, origin: tuple[float, float], size: int = 1000) -> Path:
    """A 1000 x 1000 uint16 GeoTIFF (2 MB): big next to its header, as real scenes are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="uint16",
        crs=f"EPSG:{epsg}",
        transform=from_origin(origin[0], origin[1], 300, 300),
        nodata=0,
        tiled=True,
    ) as dst:
        dst.write(np.arange(size * size, dtype="uint16").reshape(1, size, size))
    return path


def _reference(path: Path) -> Polygon:
    """rasterio's bounds of the local file, 2,000 edge points reprojected one by one."""
    with rasterio.open(path) as src:
        bounds, epsg = src.bounds, src.crs.to_epsg()
    ring = shapely.segmentize(box(*bounds), (bounds[2] - bounds[0]) / 500).exterior.coords
    to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)
    return Polygon([to_wgs84.transform(x, y) for x, y in ring])


def _close(footprint, reference: Polygon) -> bool:
    return footprint.symmetric_difference(reference).area / reference.area < 1e-4


def _tree(root: Path) -> dict[str, Path]:
    """The served folder: rasters at depths 0..3, a vector, a text file, an Apache page."""
    files = {
        "landsat": _write(root / LANDSAT, epsg=32632, origin=(300000, 5100000)),
        "ortho": _write(root / "sub" / "ortho_20190704.tif", epsg=32633, origin=(400000, 4800000)),
        "deep": _write(
            root / "sub" / "a" / "b" / "dem_2023-04-01.tif", epsg=32633, origin=(500000, 4500000)
        ),
        "sentinel": _write(root / "apache" / SENTINEL, epsg=32633, origin=(300000, 4700000)),
    }
    fields = root / "vectors" / "fields.gpkg"
    fields.parent.mkdir()
    gpd.GeoDataFrame(
        {"name": ["a", "b"]}, geometry=[box(10, 45, 11, 46), box(12, 44, 12.5, 44.5)], crs=4326
    ).to_file(fields)
    files["fields"] = fields
    (root / "notes.txt").write_text("not geodata")
    return files


APACHE_PAGE = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of /apache</title></head><body><h1>Index of /apache</h1>
<table><tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>
<th><a href="?C=S;O=A">Size</a></th></tr>
<tr><td><a href="/">Parent Directory</a></td></tr>
<tr><td><a href="{name}">{name}</a></td><td>2022-06-12 13:00</td><td>2.0M</td></tr>
<tr><td><a href="http://elsewhere.example.org/apache/x.tif">x.tif</a></td></tr>
<tr><td><a href="../sub/ortho_20190704.tif">up and over</a></td></tr>
</table></body></html>
"""


def test_http_listing_harvest_reads_footprints_by_range_requests(db, listing_http) -> None:
    root, base, served = listing_http["root"], listing_http["base"], listing_http["served"]
    files = _tree(root)
    (root / "apache" / "index.html").write_text(APACHE_PAGE.format(name=SENTINEL))

    report = harvest(db, base + "/", max_depth=1)
    assert (report.kind, report.added, report.failed) == ("listing", 4, 0), report.failures
    # depth 1: sub/a/b/dem_... (three folders down) is not crawled
    assert count(db, {"title": "dem_2023-04-01.tif"}) == 0

    landsat = get_dataset(db, LANDSAT.split(".")[0])
    assert (landsat.platform, landsat.instrument, landsat.collection) == (
        "landsat-8",
        "oli-tirs",
        "landsat",
    )
    assert landsat.time_start == datetime(2021, 5, 8, tzinfo=UTC)
    assert landsat.uris[0].uri == f"{base}/{LANDSAT}"
    assert landsat.uris[0].size == files["landsat"].stat().st_size
    ortho = get_dataset(db, f"{base}/sub/ortho_20190704.tif")
    assert ortho.collection == "sub" and ortho.time_start == datetime(2019, 7, 4, tzinfo=UTC)
    for key, dataset in (
        ("landsat", landsat),
        ("ortho", ortho),
        ("sentinel", get_dataset(db, SENTINEL.split(".")[0])),
    ):
        with rasterio.open(files[key]) as src:
            assert dataset.properties["native_bounds"] == list(src.bounds)
            assert dataset.properties["crs"] == src.crs.to_string()
        assert _close(dataset.footprint, _reference(files[key])), key
    vector = get_dataset(db, f"{base}/vectors/fields.gpkg")
    assert vector.properties["feature_count"] == 2
    assert vector.footprint.normalize().equals(box(10, 44, 12.5, 46).normalize())

    rasters = ("landsat", "ortho", "sentinel")
    raster_bytes = sum(n for path, n in served.file_bytes.items() if not path.endswith(".gpkg"))
    total = sum(files[k].stat().st_size for k in rasters)
    assert raster_bytes < 0.05 * total, (raster_bytes, total, served.file_bytes)
    print("http bytes sent", raster_bytes, "of", total)
    assert not any(
        rng is None
        for method, path, rng in served.requests
        if method == "GET" and path.lower().endswith((".tif", ".tiff"))
    )

    # idempotent, and the depth option reaches the deep file
    again = harvest(db, base, max_depth=3)
    assert (again.added, again.updated, again.failed) == (1, 4, 0)
    deep = get_dataset(db, f"{base}/sub/a/b/dem_2023-04-01.tif")
    assert _close(deep.footprint, _reference(files["deep"]))


def test_page_links_keep_only_what_is_below_the_folder() -> None:
    page = "http://h:1/data/apache/"
    folders, files = page_links(page, APACHE_PAGE.format(name=SENTINEL))
    assert (folders, files) == ([], [page + SENTINEL])
    nginx = (
        "<html><head><title>Index of /d/</title></head><body><h1>Index of /d/</h1><hr><pre>"
        '<a href="../">../</a>\n<a href="2024/">2024/</a>  01-Jan-2024 00:00 -\n'
        '<a href="a%20b.tif">a b.tif</a>  01-Jan-2024 00:00  2M\n'
        '<a href="c.TIF#x">c.TIF</a>\n<a href="readme.txt">readme.txt</a>\n</pre><hr></body></html>'
    )
    folders, files = page_links("http://h/d/", nginx)
    assert folders == ["http://h/d/2024/"]
    assert files == ["http://h/d/a%20b.tif", "http://h/d/c.TIF"]


def test_ftp_listing_harvest_reads_headers_only(db, listing_ftp) -> None:
    root, base, served = listing_ftp["root"], listing_ftp["base"], listing_ftp["served"]
    files = _tree(root)

    report = harvest(db, base + "/", max_depth=5)
    assert (report.kind, report.added, report.failed) == ("listing", 5, 0), report.failures
    for key in ("landsat", "ortho", "deep", "sentinel"):
        name = files[key].name
        found = search(db, {"title": name})
        assert len(found) == 1, name
        with rasterio.open(files[key]) as src:
            assert found[0].properties["native_bounds"] == list(src.bounds)
        assert _close(found[0].footprint, _reference(files[key])), key
        assert found[0].uris[0].size == files[key].stat().st_size
    landsat = get_dataset(db, LANDSAT.split(".")[0])
    assert landsat.uris[0].uri == f"{base}/{LANDSAT}"
    # the GeoPackage has no header at its start: fetched whole (it is small)
    vector = get_dataset(db, f"{base}/vectors/fields.gpkg")
    assert vector.footprint.normalize().equals(box(10, 44, 12.5, 46).normalize())

    tif_sent = sum(n for path, n in served.file_bytes.items() if path.endswith((".tif", ".TIF")))
    total = sum(files[k].stat().st_size for k in ("landsat", "ortho", "deep", "sentinel"))
    assert tif_sent < 0.25 * total, (tif_sent, total, served.file_bytes)
    print("ftp bytes sent", tif_sent, "of", total)


def test_listing_cli_with_depth_and_unreadable_file(db, cli, listing_http) -> None:
    root, base = listing_http["root"], listing_http["base"]
    _write(root / "ok_20200101.tif", epsg=32632, origin=(300000, 5100000), size=64)
    (root / "sub").mkdir()
    _write(root / "sub" / "deeper_20200102.tif", epsg=32632, origin=(300000, 5100000), size=64)
    (root / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 200)

    code, out, err = cli("catalog", "harvest", base + "/", "--depth", "0", "--json")
    assert code == 2, err
    doc = json.loads(out)
    assert (doc["kind"], doc["added"], doc["failed"]) == ("listing", 1, 1)
    assert doc["failures"][0]["entry_id"] == f"{base}/broken.tif"
    assert "cannot read" in doc["failures"][0]["error"]

    (root / "broken.tif").unlink()
    _write(root / "broken.tif", epsg=32632, origin=(300000, 5100000), size=64)
    retried = retry_failed(db)  # re-read from its URL, not from a cache
    assert (retried.updated, retried.failed) == (1, 0)
    assert get_dataset(db, f"{base}/broken.tif").harvest_status == "ok"

    code, out, err = cli("catalog", "harvest", base + "/", "--depth", "-1")
    assert code == 2 and "invalid depth -1" in err
    code, out, err = cli("catalog", "harvest", base + "/missing/")
    assert code == 2 and "HTTP 404" in err and "Traceback" not in err


def test_nginx_autoindex_listing(db, listing_nginx) -> None:
    """nginx's own autoindex pages and Range answers, bytes from its access log."""
    root, base = listing_nginx["root"], listing_nginx["base"]
    files = _tree(root)

    report = harvest(db, base + "/", max_depth=5)
    assert (report.kind, report.added, report.failed) == ("listing", 5, 0), report.failures
    for key in ("landsat", "ortho", "deep", "sentinel"):
        found = search(db, {"title": files[key].name})
        assert len(found) == 1
        assert _close(found[0].footprint, _reference(files[key])), key
        assert found[0].uris[0].size == files[key].stat().st_size

    log = listing_nginx["log"]()
    tif = [r for r in log if r[0] == "GET" and r[1].lower().endswith((".tif", ".tiff"))]
    assert tif and all(r[2] == "206" for r in tif), tif  # every raster read is a range
    sent = sum(int(r[3]) for r in tif)
    total = sum(files[k].stat().st_size for k in ("landsat", "ortho", "deep", "sentinel"))
    assert sent < 0.05 * total, (sent, total)


def test_ftp_file_too_large_to_fetch_whole_is_a_failure_saying_so(
    db, listing_ftp, monkeypatch
) -> None:
    from terrapipe.catalog.harvest import listing

    root, base = listing_ftp["root"], listing_ftp["base"]
    _tree(root)
    monkeypatch.setattr(listing, "WHOLE_FILE_LIMIT", 1024)  # smaller than the GeoPackage
    report = harvest(db, base, max_depth=0)
    assert (report.added, report.failed) == (1, 0)  # the Landsat raster, by its header
    report = harvest(db, base + "/vectors/")
    assert report.failed == 1
    error = report.failures[0].error
    assert error.startswith(f"cannot read {base}/vectors/fields.gpkg")
    assert "larger than the 1024 bytes fetched whole over FTP" in error
