"""Harvest a folder: every raster (rasterio) and vector (pyogrio) file becomes a dataset.

The footprint comes from the file's real bounds reprojected to EPSG:4326 with densified
edges; the time from file tags, else a date in the file name; platform and instrument
from well-known product names (Landsat, Sentinel-1/2). The ``entry_id`` is the file stem
for a well-known product name (globally unique), else the absolute path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

import pyogrio
import rasterio

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.harvest.footprint import bounds_footprint
from terrapipe.catalog.harvest.products import ProductInfo, date_from_name, parse_product_name
from terrapipe.catalog.harvest.report import Failure
from terrapipe.catalog.timespan import parse_datetime
from terrapipe.errors import HarvestError, QueryError

RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".jp2", ".img", ".vrt", ".nc", ".hdf", ".h5", ".asc"})
VECTOR_SUFFIXES = frozenset({".gpkg", ".shp", ".geojson", ".fgb", ".gml", ".kml", ".parquet"})
SIDECARS = (".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx")
MEDIA_TYPES = {
    ".tif": "image/tiff; application=geotiff",
    ".tiff": "image/tiff; application=geotiff",
    ".jp2": "image/jp2",
    ".nc": "application/x-netcdf",
    ".gpkg": "application/geopackage+sqlite3",
    ".geojson": "application/geo+json",
    ".fgb": "application/flatgeobuf",
    ".parquet": "application/vnd.apache.parquet",
    ".shp": "application/x-shapefile",
}
_START_TAGS = (
    "ACQUISITION_DATETIME",
    "ACQUISITIONDATETIME",
    "DATETIME_ACQUIRED",
    "DATE_ACQUIRED",
    "ACQUISITION_DATE",
    "SENSING_TIME",
    "START_DATETIME",
    "TIME_START",
    "DATETIME",
)
_END_TAGS = ("END_DATETIME", "TIME_END")


def folder_files(root: Path) -> list[Path]:
    """Raster and vector files under ``root`` (recursively, hidden entries skipped), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            suffix = Path(name).suffix.lower()
            if not name.startswith(".") and suffix in RASTER_SUFFIXES | VECTOR_SUFFIXES:
                found.append(Path(dirpath) / name)
    return sorted(found)


def product_of(path: PurePath) -> ProductInfo | None:
    """The well-known product a raster file's name denotes; None for vectors and others.

    A vector file named after a scene (an outline, a mask) is not the scene: it gets no
    platform or instrument and keeps its path as entry id, so it never collides with the
    scene's raster of the same stem.
    """
    if path.suffix.lower() not in RASTER_SUFFIXES:
        return None
    return parse_product_name(path.name.split(".")[0])


def entry_id_for(path: Path) -> str:
    """The entry id of a file: its stem for a well-known product raster, else its path."""
    path = path.resolve()
    return path.name.split(".")[0] if product_of(path) else path.as_posix()


def harvest_file(path: Path, *, collection: str | None = None) -> Dataset | Failure:
    """One file as a dataset, or a failure naming the file and what went wrong."""
    path = path.resolve()
    source = {"kind": "file", "path": path.as_posix(), "collection": collection}
    entry_id = entry_id_for(path)
    product = product_of(path)
    default_collection = collection or (product.family if product else path.parent.name)
    try:
        if path.suffix.lower() in VECTOR_SUFFIXES:
            meta = vector_metadata(path)
        else:
            meta = raster_metadata(path)
    except Exception as exc:  # any read error is reported per file, never fatal
        return Failure(
            entry_id=entry_id,
            error=f"cannot read {path}: {one_line(exc)}",
            source=source,
            title=path.name,
            collection=default_collection,
        )
    return file_dataset(
        entry_id, path.name, meta, product, default_collection, tuple(_uris(path)), source
    )


def file_dataset(
    entry_id: str,
    name: str,
    meta: dict[str, Any],
    product: Any,
    collection: str | None,
    uris: tuple[DatasetURI, ...],
    source: dict[str, Any],
) -> Dataset:
    """The dataset of one harvested file (local or listed) from what was read of it:
    ``meta`` (footprint, tags, other properties) and its product name, if one is known."""
    start, end = times(meta.pop("tags"), name, product)
    return Dataset(
        entry_id=entry_id,
        title=name,
        collection=collection,
        platform=product.platform if product else None,
        instrument=product.instrument if product else None,
        provider=product.provider if product else None,
        time_start=start,
        time_end=end,
        footprint=meta.pop("footprint"),
        properties={**(product.properties if product else {}), **meta},
        uris=uris,
        harvest_source=source,
    )


def iter_folder(root: Path, *, collection: str | None = None) -> Iterator[Dataset | Failure]:
    """Every harvestable file of a folder, in path order."""
    if not root.is_dir():
        raise HarvestError(f"not a folder: {str(root)!r}")
    for path in folder_files(root):
        yield harvest_file(path, collection=collection)


def raster_metadata(path: Path | str) -> dict[str, Any]:
    """Footprint, tags and grid of a raster (a path, or a GDAL ``/vsi...`` name)."""
    with rasterio.open(path) as src:
        if src.crs is None:
            raise HarvestError("the raster has no CRS (georeferencing is never assumed)")
        tags = {k.upper(): v for k, v in src.tags().items()}
        return {
            "footprint": bounds_footprint(src.bounds, src.crs),
            "tags": tags,
            "kind": "raster",
            "driver": src.driver,
            "crs": src.crs.to_string(),
            "width": src.width,
            "height": src.height,
            "band_count": src.count,
            "dtype": src.dtypes[0],
            "resolution": [abs(src.res[0]), abs(src.res[1])],
            "nodata": src.nodata,
            "native_bounds": list(src.bounds),
        }


def vector_metadata(path: Path | str) -> dict[str, Any]:
    """Footprint over every layer, layers and feature count of a vector file."""
    layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    infos = [pyogrio.read_info(path, layer=layer, force_total_bounds=True) for layer in layers]
    bounded = [
        i for i in infos if i["total_bounds"] is not None and all(b == b for b in i["total_bounds"])
    ]
    if not bounded:
        raise HarvestError("the vector file has no features with a geometry")
    crs = bounded[0]["crs"]
    if not crs:
        raise HarvestError("the vector file has no CRS (georeferencing is never assumed)")
    minx = min(i["total_bounds"][0] for i in bounded)
    miny = min(i["total_bounds"][1] for i in bounded)
    maxx = max(i["total_bounds"][2] for i in bounded)
    maxy = max(i["total_bounds"][3] for i in bounded)
    bounds = (minx, miny, maxx, maxy)
    return {
        "footprint": bounds_footprint(bounds, crs),
        "tags": {},
        "kind": "vector",
        "driver": bounded[0].get("driver"),
        "crs": str(crs),
        "layers": layers,
        "feature_count": int(sum(i["features"] for i in infos if i["features"] >= 0)),
        "geometry_type": bounded[0]["geometry_type"],
        "native_bounds": [float(b) for b in bounds],
    }


def times(
    tags: dict[str, str], name: str, product: ProductInfo | None
) -> tuple[datetime | None, datetime | None]:
    """(start, end): from tags, else the product name, else a date in the name."""
    start = _first_time(tags, _START_TAGS)
    if start is None and product is not None:
        start = product.acquired
    if start is None:
        start = date_from_name(name)
    if start is None:
        start = _first_time(tags, ("TIFFTAG_DATETIME",))
    end = _first_time(tags, _END_TAGS)
    if start is not None and end is not None and end < start:
        end = None
    return start, end


def _first_time(tags: dict[str, str], keys: tuple[str, ...]) -> datetime | None:
    for key in keys:
        value = tags.get(key)
        if not value:
            continue
        for text in (value.strip(), value.strip().replace(":", "-", 2)):
            try:
                return parse_datetime(text, name=key)
            except QueryError:
                continue
        found = date_from_name(value)
        if found is not None:
            return found
    return None


def _uris(path: Path) -> Iterator[DatasetURI]:
    suffix = path.suffix.lower()
    yield DatasetURI(
        uri=path.as_uri(),
        role="data",
        name=path.name,
        media_type=MEDIA_TYPES.get(suffix),
        size=path.stat().st_size,
        local_path=path.as_posix(),
    )
    if suffix == ".shp":
        for sidecar in SIDECARS:
            other = path.with_suffix(sidecar)
            if other.exists():
                yield DatasetURI(
                    uri=other.as_uri(),
                    role="data",
                    name=other.name,
                    size=other.stat().st_size,
                    local_path=other.as_posix(),
                )


def one_line(exc: BaseException) -> str:
    """The first line of an error's text, for a per-file failure."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
