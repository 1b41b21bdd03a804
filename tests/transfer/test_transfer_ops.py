"""crop, archive/unarchive, copy (link, flag, TTL), remove_downloaded, publish (local, SFTP)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point
from transfer_data import write_raster

from terrapipe.errors import InvalidInput, UnsafeArchive
from terrapipe.transfer.ops import (
    LocalPublishTarget,
    SftpPublishTarget,
    archive,
    copy,
    crop,
    expire_copies,
    publish,
    remove_downloaded,
    unarchive,
)
from terrapipe.transfer.secrets import Secret

# write_raster: 30 m pixels from (500000, 2000000) in EPSG:32643; crop in that CRS
WINDOW = (500000 + 30 * 100, 2000000 - 30 * 150, 500000 + 30 * 160, 2000000 - 30 * 110)


def test_crop_raster_bbox_is_the_exact_window(tmp_path):
    src = tmp_path / "in.tif"
    data = write_raster(src)
    out = crop(src, tmp_path / "out" / "c.tif", bbox=WINDOW, crs="EPSG:32643")
    with rasterio.open(out) as c:
        assert (c.width, c.height) == (60, 40)
        np.testing.assert_array_equal(c.read(1), data[0, 110:150, 100:160])
        assert c.transform.c == WINDOW[0] and c.transform.f == WINDOW[3]
    assert [p.name for p in out.parent.iterdir()] == ["c.tif"]


def test_crop_raster_bbox_off_the_pixel_edges_keeps_every_pixel_it_touches(tmp_path):
    """Issue 12: crop uses geo's window (snapped outward), not rasterio's round_offsets /
    round_lengths, which dropped the partly covered first and last columns here."""
    src = tmp_path / "in.tif"
    data = write_raster(src)
    west, north = 500000 + 30 * 100 + 28, 2000000 - 30 * 110 - 1  # 2 m / 1 m into pixels
    east, south = 500000 + 30 * 160 + 2, 2000000 - 30 * 150 + 1
    # independent: every pixel whose 30 m extent overlaps the bbox
    col_edges = 500000 + 30 * np.arange(data.shape[2] + 1)
    row_edges = 2000000 - 30 * np.arange(data.shape[1] + 1)
    cols = np.nonzero((col_edges[:-1] < east) & (col_edges[1:] > west))[0]
    rows = np.nonzero((row_edges[1:] < north) & (row_edges[:-1] > south))[0]
    out = crop(src, tmp_path / "c.tif", bbox=(west, south, east, north), crs="EPSG:32643")
    with rasterio.open(out) as c:
        assert (c.height, c.width) == (rows.size, cols.size) == (40, 61)
        expected = data[0, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        np.testing.assert_array_equal(c.read(1), expected)
        assert c.transform.c == col_edges[cols[0]] and c.transform.f == row_edges[rows[0]]


def test_crop_raster_to_geometry_masks_outside(tmp_path):
    src = tmp_path / "in.tif"
    write_raster(src)
    x0, y0, x1, y1 = WINDOW
    triangle = f"POLYGON(({x0} {y0}, {x1} {y0}, {x0} {y1}, {x0} {y0}))"
    out = crop(src, tmp_path / "t.tif", geometry=triangle, crs="EPSG:32643")
    with rasterio.open(out) as c:
        band = c.read(1)
        assert band[-1, 0] != c.nodata and band[0, -1] == c.nodata


def test_crop_netcdf_stays_netcdf(tmp_path):
    src = tmp_path / "in.nc"
    data = write_raster(src, driver="netCDF", size=200, dtype="float32")
    out = crop(src, tmp_path / "c.nc", bbox=WINDOW, crs="EPSG:32643")
    with rasterio.open(out) as c:
        assert c.driver == "netCDF"
        np.testing.assert_array_equal(c.read(1), data[0, 110:150, 100:160])


def test_crop_vector_bbox_in_4326(tmp_path):
    frame = gpd.GeoDataFrame(
        {"id": [1, 2, 3]},
        geometry=[Point(77.1, 12.1), Point(77.9, 12.9), Point(80, 15)],
        crs="EPSG:4326",
    )
    src = tmp_path / "pts.gpkg"
    frame.to_crs("EPSG:32643").to_file(src, driver="GPKG")
    out = crop(src, tmp_path / "c.gpkg", bbox=(77, 12, 78, 13))
    back = gpd.read_file(out)
    assert sorted(back["id"]) == [1, 2]
    assert back.crs.to_epsg() == 32643


def test_crop_rejects_bad_area(tmp_path):
    src = tmp_path / "in.tif"
    write_raster(src)
    with pytest.raises(InvalidInput, match="bbox"):
        crop(src, tmp_path / "x.tif", bbox=(5, 5, 1, 1))
    with pytest.raises(InvalidInput, match="overlap"):
        crop(src, tmp_path / "x.tif", bbox=(0, 0, 1, 1))


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, body in members:
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return path


def _info(name: str, size: int = 0, kind=tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname = size, kind, link
    return info


def test_archive_roundtrip(tmp_path):
    folder = tmp_path / "ds"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.nc").write_bytes(b"a" * 100)
    (folder / "sub" / "b.txt").write_text("b")
    out = archive(folder)
    assert out.name == "ds.tar.gz"
    files = unarchive(out, tmp_path / "x")
    assert (tmp_path / "x" / "ds" / "a.nc").read_bytes() == b"a" * 100
    assert sorted(p.name for p in files) == ["a.nc", "b.txt"]


@pytest.mark.parametrize(
    "member,why",
    [
        (_info("/etc/evil", 3), "absolute"),
        (_info("ok/../../evil", 3), "'..'"),
        (_info("link", kind=tarfile.SYMTYPE, link="/etc/passwd"), "outside"),
        (_info("d/link", kind=tarfile.SYMTYPE, link="../../x"), "outside"),
        (_info("hard", kind=tarfile.LNKTYPE, link="../x"), "outside"),
        (_info("dev", kind=tarfile.CHRTYPE), "device"),
    ],
)
def test_unsafe_archives_are_refused_before_extracting_anything(tmp_path, member, why):
    body = b"xyz" if member.isfile() else None
    bad = _tar(tmp_path / "bad.tar.gz", [(_info("first.txt", 2), b"ok"), (member, body)])
    with pytest.raises(UnsafeArchive, match=why):
        unarchive(bad, tmp_path / "dest")
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())
    assert not (tmp_path / "evil").exists()


def test_archive_over_size_limit_is_refused(tmp_path):
    bad = _tar(tmp_path / "big.tar.gz", [(_info(f"f{i}", 600), b"0" * 600) for i in range(3)])
    with pytest.raises(UnsafeArchive, match="limit of 1000"):
        unarchive(bad, tmp_path / "dest", max_total_size=1000)
    assert unarchive(bad, tmp_path / "ok", max_total_size=1800)


def test_copy_link_flag_and_ttl(tmp_path):
    src = tmp_path / "data" / "s.nc"
    src.parent.mkdir()
    src.write_bytes(b"1234")
    dest = tmp_path / "dest"
    linked = copy(src, dest, link=True, flag_file=True, metadata={"entry_id": "S1"})
    assert linked.is_symlink() and linked.resolve() == src.resolve()
    flag = json.loads((dest / "s.nc.flag").read_text())
    assert flag["entry_id"] == "S1" and flag["source"] == str(src.resolve())
    user_file = dest / "mine.txt"  # not a terrapipe copy: never expired
    user_file.write_text("keep")
    old = time.time() - 3 * 86400
    os.utime(user_file, (old, old))
    marker = dest / ".s.nc.terrapipe-copy"
    record = json.loads(marker.read_text())
    marker.write_text(json.dumps({**record, "copied_at": old}))
    other = tmp_path / "data" / "t.nc"
    other.write_bytes(b"5")
    copied = copy(other, dest, time_to_live=2)
    assert copied.read_bytes() == b"5" and not copied.is_symlink()
    assert not linked.is_symlink() and not (dest / "s.nc.flag").exists()
    assert user_file.exists()
    assert expire_copies(dest, 2) == []


def test_remove_downloaded(tmp_path):
    f = tmp_path / "ds" / "a.nc"
    f.parent.mkdir()
    f.write_bytes(b"x")
    (tmp_path / "ds" / "a.nc.part").write_bytes(b"y")
    assert len(remove_downloaded(f)) == 2
    assert not (tmp_path / "ds").exists()


def test_publish_local_and_sftp(tmp_path, sftp_server):
    base = tmp_path / "products"
    f = base / "2024" / "ndvi.tif"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"tif")
    url = publish(
        f, LocalPublishTarget(tmp_path / "www", "http://example.org/data/"), relative_to=base
    )
    assert url == "http://example.org/data/2024/ndvi.tif"
    assert (tmp_path / "www" / "2024" / "ndvi.tif").read_bytes() == b"tif"
    assert sorted(p.name for p in (tmp_path / "www" / "2024").iterdir()) == ["ndvi.tif"]
    target = SftpPublishTarget(
        host="127.0.0.1",
        port=sftp_server.port,
        root="/pub/project",
        url_prefix="ftp://ftp.example.org/project",
        username=sftp_server.user,
        password=Secret(sftp_server.password),
        known_hosts=str(sftp_server.known_hosts),
    )
    assert sftp_server.password not in repr(target)
    url = publish(f, target, relative_to=base)
    assert url == "ftp://ftp.example.org/project/2024/ndvi.tif"
    published = sftp_server.root / "pub" / "project" / "2024"
    assert (published / "ndvi.tif").read_bytes() == b"tif"
    assert [p.name for p in published.iterdir()] == ["ndvi.tif"]
