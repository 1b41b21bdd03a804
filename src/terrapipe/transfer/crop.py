"""Cropping a raster, NetCDF variable or vector file to a bbox or geometry (windowed reads).

A thin use of :mod:`terrapipe.geo`: the area becomes an :class:`~terrapipe.geo.roi.ROI`
(``roi_from_bbox`` / ``roi_from_wkt`` / ``roi_from_geojson`` / ``make_roi``), given in
EPSG:4326 or ``crs=``; a raster is read only in the window :func:`~terrapipe.geo.raster.
roi_window` gives (snapped outward: every pixel the area overlaps), and with a geometry
(not a plain bbox) pixels outside it become nodata (0 when the raster has none); a vector
is read with a bbox filter and cut by :func:`~terrapipe.geo.vector.clip_vector`. NetCDF
stays NetCDF, other rasters become GeoTIFF; vectors keep their format and layer name. An
area that misses the data is a :class:`~terrapipe.errors.RoiOutsideData` saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from terrapipe.errors import InvalidInput, RoiOutsideData
from terrapipe.store.atomic import atomic_path

if TYPE_CHECKING:  # geo (geopandas, pyproj) is imported only when a crop runs
    from terrapipe.geo.roi import ROI

VECTOR_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": None}


def crop_area(bbox: Any = None, geometry: Any = None, *, crs: Any = "EPSG:4326") -> ROI:
    """The ROI to crop to: ``bbox`` (west, south, east, north) or a geometry/WKT/GeoJSON."""
    import shapely

    from terrapipe.geo.roi import make_roi, roi_from_bbox, roi_from_geojson, roi_from_wkt

    if (bbox is None) == (geometry is None):
        raise InvalidInput("give exactly one of bbox or geometry to crop to")
    if bbox is not None:
        return roi_from_bbox(bbox, crs=crs, label="crop area")
    if isinstance(geometry, str):
        return roi_from_wkt(geometry, crs=crs, label="crop area")
    if isinstance(geometry, dict):
        return roi_from_geojson(geometry, crs=crs, label="crop area")
    if isinstance(geometry, shapely.Geometry):
        return make_roi(geometry, crs, label="crop area", kind="wkt")
    raise InvalidInput(f"invalid geometry of type {type(geometry).__name__}")


def crop(
    in_file: str | Path,
    out_file: str | Path,
    *,
    bbox: Any = None,
    geometry: Any = None,
    crs: str = "EPSG:4326",
    variable: str | None = None,
) -> Path:
    """Crop ``in_file`` (raster, NetCDF variable or vector) to the area; returns ``out_file``."""
    from terrapipe.transfer.converters import is_gdal_raster, is_ogr_vector

    in_file, out_file = Path(in_file), Path(out_file)
    if not in_file.exists():
        raise InvalidInput(f"file to crop not found: {str(in_file)!r}")
    area = crop_area(bbox, geometry, crs=crs)
    with atomic_path(out_file) as tmp:
        if is_gdal_raster(in_file):
            source = f'NETCDF:"{in_file}":{variable}' if variable else str(in_file)
            _crop_raster(source, tmp, area, mask=bbox is None)
        elif is_ogr_vector(in_file):
            _crop_vector(in_file, tmp, area)
        else:
            raise InvalidInput(f"{str(in_file)!r} is neither a GDAL raster nor an OGR vector")
    return out_file


def _crop_raster(source: str, out: Path, area: ROI, *, mask: bool) -> None:
    import rasterio
    from rasterio.features import geometry_mask

    from terrapipe.geo.raster import roi_window

    with rasterio.open(source) as src:
        if src.count == 0:
            raise InvalidInput(f"{source!r} has several variables: choose one with variable=")
        if src.crs is None:
            raise InvalidInput(f"{source!r} has no CRS; cannot place the crop area")
        shape = (src.height, src.width)
        try:
            window, local = roi_window(area, src.transform, shape, src.crs, name=source)
        except RoiOutsideData:
            raise RoiOutsideData(f"the crop area does not overlap the raster {source!r}") from None
        data = src.read(window=window, masked=False)
        transform = src.window_transform(window)
        nodata = src.nodata
        if mask:
            if nodata is None:
                nodata = 0
            outside = geometry_mask([local.geometry], out_shape=data.shape[1:], transform=transform)
            data[:, outside] = nodata
        driver = "netCDF" if src.driver == "netCDF" else "GTiff"
        profile = {
            "driver": driver,
            "width": data.shape[2],
            "height": data.shape[1],
            "count": src.count,
            "dtype": data.dtype,
            "crs": src.crs,
            "transform": transform,
            "nodata": nodata,
        }
        if driver == "GTiff":
            profile.update(compress="deflate", tiled=data.shape[2] >= 256 and data.shape[1] >= 256)
            with rasterio.open(out, "w", **profile) as dst:
                dst.write(data)
            return
        # rasterio cannot open netCDF for writing: build in memory, then GDAL CreateCopy
        from rasterio.io import MemoryFile
        from rasterio.shutil import copy as gdal_copy

        with MemoryFile() as mem:
            with mem.open(**{**profile, "driver": "GTiff"}) as dst:
                dst.write(data)
            gdal_copy(mem.name, out, driver="netCDF")


def _crop_vector(in_file: Path, out: Path, area: ROI) -> None:
    """Read the features in the area's bbox, cut them to it, write them like the input."""
    import geopandas as gpd
    import pyogrio

    from terrapipe.geo.vector import clip_vector

    data_crs = gpd.read_file(in_file, rows=0, engine="pyogrio").crs or area.crs
    window = area.to_crs(data_crs).bounds
    frame = gpd.read_file(in_file, bbox=window, engine="pyogrio")
    if frame.crs is None:  # a file without a CRS is taken to be in the area's CRS
        frame = frame.set_crs(data_crs)
    try:
        clipped = clip_vector(frame, area, name=str(in_file))
    except RoiOutsideData:
        raise RoiOutsideData(f"the crop area does not overlap {str(in_file)!r}") from None
    suffix = in_file.suffix.lower()
    if suffix == ".parquet":
        clipped.to_parquet(out)
    else:
        driver = VECTOR_DRIVERS.get(suffix) or "GPKG"
        layer = str(pyogrio.list_layers(in_file)[0][0])
        clipped.to_file(out, driver=driver, layer=layer, engine="pyogrio")
