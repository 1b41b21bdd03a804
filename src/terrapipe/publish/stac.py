"""A static STAC catalog of published layers under ``$TERRAPIPE_HOME/stac/``.

Root catalog, one collection per workflow, one item per layer (id = layer name) with the
projection and raster extensions read from the files themselves, the processing extension
(software, lineage) and ``derived_from`` links to the inputs. Writes hold a file lock, so
concurrent runs publishing into the same catalog do not lose each other's items.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pystac
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension

import terrapipe
from terrapipe.publish.layers import Layer

PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
MEDIA_TYPES = {
    ".tif": pystac.MediaType.COG,
    ".tiff": pystac.MediaType.COG,
    ".parquet": "application/vnd.apache.parquet",
    ".gpkg": pystac.MediaType.GEOPACKAGE,
    ".geojson": pystac.MediaType.GEOJSON,
    ".csv": "text/csv",
    ".png": pystac.MediaType.PNG,
    ".html": pystac.MediaType.HTML,
    ".json": pystac.MediaType.JSON,
}


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _open_catalog(root: Path) -> pystac.Catalog:
    path = root / "catalog.json"
    if path.exists():
        return pystac.Catalog.from_file(str(path))
    return pystac.Catalog(
        id="terrapipe",
        description="Layers published by terrapipe",
        title="terrapipe layers",
    )


def _raster_metadata(path: Path) -> dict[str, Any]:
    import rasterio

    with rasterio.open(path) as src:
        epsg = src.crs.to_epsg() if src.crs else None
        bands = []
        for i in range(1, src.count + 1):
            band = RasterBand.create(
                nodata=src.nodata,
                data_type=DataType(src.dtypes[i - 1]),
                spatial_resolution=float(abs(src.res[0])),
            )
            bands.append(band)
        return {
            "epsg": epsg,
            "wkt2": src.crs.to_wkt() if src.crs and epsg is None else None,
            "shape": [src.height, src.width],
            "transform": list(src.transform)[:6],
            "bbox": list(src.bounds),
            "bands": bands,
        }


def _vector_epsg(path: Path) -> int | None:
    try:
        import pyogrio

        info = pyogrio.read_info(path)
        crs = info.get("crs")
        if crs and crs.upper().startswith("EPSG:"):
            return int(crs.split(":")[1])
    except Exception:  # noqa: BLE001 - metadata is best effort for non-spatial tables
        return None
    return None


def build_item(
    layer: Layer,
    *,
    geometry: dict[str, Any],
    bbox: Sequence[float],
    derived_from: Sequence[str] = (),
    lineage: str = "",
    datetime: dt.datetime | None = None,
) -> pystac.Item:
    """A STAC item for a layer (pure apart from reading the files' headers)."""
    when = datetime or layer.updated_at or dt.datetime.now(dt.UTC)
    item = pystac.Item(
        id=layer.name,
        geometry=geometry,
        bbox=list(bbox),
        datetime=when,
        properties={
            "title": f"{layer.dataset} · {layer.roi_slug} · v{layer.layer_version}",
            "terrapipe:dataset": layer.dataset,
            "terrapipe:kind": layer.kind,
            "terrapipe:layer_version": layer.layer_version,
            "terrapipe:algorithm_version": layer.algorithm_version,
            "terrapipe:roi": layer.roi_slug,
            "processing:software": {"terrapipe": terrapipe.__version__},
            "processing:lineage": lineage
            or f"{layer.workflow}: algorithm version {layer.algorithm_version}",
            "processing:datetime": when.isoformat(),
        },
    )
    item.stac_extensions.append(PROCESSING_SCHEMA)
    proj_done = False
    for f in layer.files:
        path = Path(f)
        suffix = path.suffix.lower()
        asset = pystac.Asset(
            href=str(path),
            media_type=MEDIA_TYPES.get(suffix),
            roles=["data"] if suffix not in (".png",) else ["overview"],
            title=path.name,
        )
        key = path.stem if path.stem not in item.assets else path.name
        item.add_asset(key, asset)
        if suffix in (".tif", ".tiff") and path.exists():
            meta = _raster_metadata(path)
            RasterExtension.ext(asset, add_if_missing=True).bands = meta["bands"]
            if not proj_done:
                proj = ProjectionExtension.ext(item, add_if_missing=True)
                if meta["epsg"]:
                    proj.epsg = meta["epsg"]
                else:
                    proj.wkt2 = meta["wkt2"]
                proj.shape = meta["shape"]
                proj.transform = meta["transform"]
                proj.bbox = meta["bbox"]
                proj_done = True
        elif suffix in (".parquet", ".gpkg", ".geojson") and path.exists() and not proj_done:
            epsg = _vector_epsg(path)
            if epsg:
                ProjectionExtension.ext(item, add_if_missing=True).epsg = epsg
                proj_done = True
    for href in derived_from:
        item.add_link(pystac.Link(rel="derived_from", target=str(href), title=Path(href).name))
    return item


def write_item(
    root: Path,
    layer: Layer,
    *,
    geometry: dict[str, Any],
    bbox: Sequence[float],
    derived_from: Sequence[str] = (),
    lineage: str = "",
    collection_description: str = "",
) -> Path:
    """Add (or replace) the layer's item in its workflow's collection; return the item path."""
    item = build_item(
        layer, geometry=geometry, bbox=bbox, derived_from=derived_from, lineage=lineage
    )
    with _locked(root):
        catalog = _open_catalog(root)
        collection = catalog.get_child(layer.workflow)
        if collection is None:
            collection = pystac.Collection(
                id=layer.workflow,
                description=collection_description or f"Layers made by {layer.workflow}",
                extent=pystac.Extent(
                    pystac.SpatialExtent([list(bbox)]),
                    pystac.TemporalExtent([[item.datetime, None]]),
                ),
                license="other",
            )
            catalog.add_child(collection)
        assert isinstance(collection, pystac.Collection)
        if collection.get_item(item.id) is not None:
            collection.remove_item(item.id)
        collection.add_item(item)
        collection.update_extent_from_items()
        catalog.normalize_hrefs(str(root))
        catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / layer.workflow / item.id / f"{item.id}.json"
