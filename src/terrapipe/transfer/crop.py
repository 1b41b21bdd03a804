"""Cropping a raster, NetCDF variable or vector file to a bbox or geometry (windowed reads).

The area is given in EPSG:4326 (or ``crs=``) and reprojected to the file's CRS. Rasters
are read only in the window covering the area; with a geometry (not a plain bbox) pixels
outside it become nodata. NetCDF stays NetCDF, other rasters become GeoTIFF; vectors are
read with a bbox filter, clipped, and written in their own format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from terrapipe.errors import InvalidInput
from terrapipe.store.atomic import atomic_path

VECTOR_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": None}


def area_geometry(bbox: Any = None, geometry: Any = None):
    """A shapely geometry from ``bbox`` (west, south, east, north) or a geometry/WKT/GeoJSON."""
    import shapely
    from shapely.geometry import box, shape

    if (bbox is None) == (geometry is None):
        raise InvalidInput("give exactly one of bbox or geometry to crop to")
    if bbox is not None:
        try:
            west, south, east, north = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"invalid bbox {bbox!r}: expected west, south, east, north"
            ) from None
        if west >= east or south >= north:
            raise InvalidInput(f"invalid bbox {bbox!r}: west < east and south < north needed")
        return box(west, south, east, north)
    if isinstance(geometry, str):
        try:
            return shapely.from_wkt(geometry)
        except shapely.errors.GEOSException:
            raise InvalidInput(f"invalid WKT geometry {geometry[:60]!r}") from None
    if isinstance(geometry, dict):
        return shape(geometry)
    if isinstance(geometry, shapely.Geometry):
        return geometry
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
    area = area_geometry(bbox, geometry)
    plain_box = bbox is not None
    with atomic_path(out_file) as tmp:
        if is_gdal_raster(in_file):
            source = f'NETCDF:"{in_file}":{variable}' if variable else str(in_file)
            _crop_raster(source, tmp, area, crs, mask=not plain_box)
        elif is_ogr_vector(in_file):
            _crop_vector(in_file, tmp, area, crs)
        else:
            raise InvalidInput(f"{str(in_file)!r} is neither a GDAL raster nor an OGR vector")
    return out_file


def _crop_raster(source: str, out: Path, area, crs: str, *, mask: bool) -> None:
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_bounds, transform_geom
    from rasterio.windows import Window, from_bounds

    with rasterio.open(source) as src:
        if src.count == 0:
            raise InvalidInput(f"{source!r} has several variables: choose one with variable=")
        if src.crs is None:
            raise InvalidInput(f"{source!r} has no CRS; cannot place the crop area")
        bounds = transform_bounds(crs, src.crs, *area.bounds, densify_pts=21)
        window = from_bounds(*bounds, transform=src.transform)
        window = window.round_offsets(op="floor").round_lengths(op="ceil")
        full = Window(0, 0, src.width, src.height)
        try:
            window = window.intersection(full)
        except rasterio.errors.WindowError:
            raise InvalidInput("the crop area does not overlap the raster") from None
        data = src.read(window=window, masked=False)
        transform = src.window_transform(window)
        nodata = src.nodata
        if mask:
            if nodata is None:
                nodata = 0
            geom = transform_geom(crs, src.crs, area.__geo_interface__)
            outside = geometry_mask([geom], out_shape=data.shape[1:], transform=transform)
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


def _crop_vector(in_file: Path, out: Path, area, crs: str) -> None:
    import geopandas as gpd

    info_crs = gpd.read_file(in_file, rows=0, engine="pyogrio").crs
    area_frame = gpd.GeoSeries([area], crs=crs)
    if info_crs is not None:
        area_frame = area_frame.to_crs(info_crs)
    frame = gpd.read_file(in_file, bbox=tuple(area_frame.total_bounds), engine="pyogrio")
    clipped = gpd.clip(frame, area_frame.iloc[0])
    suffix = in_file.suffix.lower()
    if suffix == ".parquet":
        clipped.to_parquet(out)
    else:
        driver = VECTOR_DRIVERS.get(suffix) or "GPKG"
        import pyogrio

        layer = str(pyogrio.list_layers(in_file)[0][0])
        clipped.to_file(out, driver=driver, layer=layer, engine="pyogrio")
