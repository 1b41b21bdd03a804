"""Raster clipping and Cloud Optimized GeoTIFF writing, reading only the windows needed.

The ROI is reprojected to the raster CRS (the output keeps the source CRS); only the window
covering the ROI is read; cells outside the ROI become nodata. Files are written as COG
(GDAL COG driver) to a temporary name in the target folder and renamed when complete.

Every read first checks the size of its window against a memory budget (``memory_budget=``
bytes; the workflows pass the ``raster_memory_budget`` setting; 2 GiB by default): a header
claiming 10^6 x 10^6 pixels is refused with a :class:`RasterError` naming the raster and
the size, before any allocation.
``src_nodata`` overrides (or supplies) a raster's nodata tag, e.g. 0 for Landsat Level-1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.crs
import rasterio.features
import rasterio.shutil
import rasterio.windows
import shapely
from affine import Affine
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.io import DatasetReader, MemoryFile
from rasterio.windows import Window

from terrapipe.errors import RasterError, RoiOutsideData
from terrapipe.geo.crs import rio_crs
from terrapipe.geo.grid import bounds_window, grid_bounds
from terrapipe.geo.roi import ROI
from terrapipe.store.atomic import atomic_path

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "RasterArray",
    "check_budget",
    "clip_dataset",
    "clip_raster",
    "default_nodata",
    "nodata_mask",
    "describe_raster",
    "open_raster",
    "read_raster",
    "rio_crs",
    "roi_window",
    "write_cog",
]


@dataclass(frozen=True)
class RasterArray:
    """An in-memory raster: array ``(bands, rows, cols)`` or ``(rows, cols)`` on a grid."""

    array: np.ndarray
    transform: Affine
    crs: Any
    nodata: float | int | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.array.shape[-2:])  # type: ignore[return-value]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return grid_bounds(self.transform, self.shape)


def default_nodata(dtype: Any) -> float | int:
    """A nodata value for a dtype: -9999 for floats, the dtype minimum (signed) or maximum."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return -9999.0
    if dt.kind == "u":
        return int(np.iinfo(dt).max)
    if dt.kind == "i":
        return int(np.iinfo(dt).min)
    raise RasterError(f"unsupported raster dtype: {dt}")


DEFAULT_MEMORY_BUDGET = 2 * 1024**3
"""Bytes a raster read may allocate when the caller gives no budget (the workflows pass the
``raster_memory_budget`` setting, whose default is the same 2 GiB)."""


def _format_bytes(n: float) -> str:
    """``n`` bytes in binary units, e.g. ``'928 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def check_budget(
    name: str,
    rows: int,
    cols: int,
    *,
    bands: int = 1,
    itemsize: int = 1,
    budget: int | None = None,
    what: str = "reading",
) -> None:
    """Refuse (:class:`RasterError`) a window of ``rows x cols x bands`` over the budget."""
    limit = DEFAULT_MEMORY_BUDGET if budget is None else int(budget)
    size = int(rows) * int(cols) * int(bands) * int(itemsize)
    if size > limit:
        raise RasterError(
            f"{what} {name} needs {rows} x {cols} pixels x {bands} band(s) = "
            f"{_format_bytes(size)}, over the raster memory budget of {_format_bytes(limit)}; "
            "use a smaller ROI or zones, or raise TERRAPIPE_RASTER_MEMORY_BUDGET"
        )


def nodata_mask(data: np.ndarray, nodata: float | int | None) -> np.ndarray:
    """True where ``data`` equals ``nodata`` (NaN matches NaN); NaN cells of floats too."""
    mask = np.isnan(data) if data.dtype.kind == "f" else np.zeros(data.shape, bool)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        mask |= data == nodata
    return mask


@contextmanager
def open_raster(path: str | Path, *, require_crs: bool = True) -> Iterator[DatasetReader]:
    """Open a raster for reading; a corrupt/non-raster file or a missing CRS names the file."""
    p = Path(path)
    if not p.exists():
        raise RasterError(f"raster file not found: {p}")
    try:
        src = rasterio.open(p)
    except RasterioIOError as exc:
        raise RasterError(f"not a readable raster: {p} ({exc})") from exc
    try:
        if require_crs and src.crs is None:
            raise RasterError(f"raster has no CRS: {p}")
        yield src
    finally:
        src.close()


def describe_raster(path: str | Path) -> dict[str, Any]:
    """Grid, CRS, dtype and nodata of a raster file (for layer records and STAC items)."""
    with open_raster(path, require_crs=False) as src:
        return {
            "path": str(Path(path)),
            "crs": src.crs.to_string() if src.crs else None,
            "epsg": src.crs.to_epsg() if src.crs else None,
            "transform": list(src.transform)[:6],
            "shape": [src.height, src.width],
            "count": src.count,
            "dtype": src.dtypes[0],
            "nodata": src.nodata,
            "bounds": list(src.bounds),
            "res": list(src.res),
        }


def roi_window(
    roi: ROI, transform: Affine, shape: tuple[int, int], crs: Any, *, name: str = "raster"
) -> tuple[Window, ROI]:
    """The pixel window covering the ROI (snapped outward, cut to the grid) and the local ROI.

    The ROI is first cut to the grid's footprint in its own CRS (densified), so a world or
    polar box, or one across the antimeridian, is never projected where it cannot be.
    """
    bounds = grid_bounds(transform, shape)
    local = roi.clip_to(bounds, crs, name=name).to_crs(crs)
    grid = shapely.box(*bounds)
    if not local.geometry.intersects(grid):
        raise RoiOutsideData(
            f"ROI {roi.label!r} does not intersect {name} "
            f"(raster bounds {tuple(round(b, 3) for b in grid.bounds)})"
        )
    win = bounds_window(local.geometry.intersection(grid).bounds, transform, shape)
    if win is None:
        raise RoiOutsideData(f"ROI {roi.label!r} does not intersect {name} (no whole pixel)")
    return win, local


def clip_dataset(
    src: DatasetReader,
    roi: ROI,
    *,
    bands: list[int] | None = None,
    nodata: float | int | None = None,
    all_touched: bool = False,
    name: str | None = None,
    src_nodata: float | int | None = None,
    memory_budget: int | None = None,
) -> RasterArray:
    """Read only the window of an open raster covering the ROI; cells outside become nodata.

    ``src_nodata`` is the input's nodata value, replacing its tag (or supplying a missing
    one); ``nodata`` the output's (default: the input's, else one fitting the dtype).
    """
    label = name or str(src.name)
    if src.crs is None:
        raise RasterError(f"raster has no CRS: {label}")
    win, local = roi_window(roi, src.transform, (src.height, src.width), src.crs, name=label)
    indexes = bands or list(range(1, src.count + 1))
    in_nodata = src_nodata if src_nodata is not None else src.nodata
    out_nodata = nodata if nodata is not None else in_nodata
    if out_nodata is None:
        out_nodata = default_nodata(src.dtypes[0])
    check_budget(
        label,
        int(win.height),
        int(win.width),
        bands=len(indexes),
        itemsize=np.dtype(src.dtypes[0]).itemsize,
        budget=memory_budget,
    )
    try:
        data = src.read(indexes, window=win)
    except RasterioError as exc:
        raise RasterError(f"cannot read raster {label}: {exc}") from exc
    win_transform = rasterio.windows.transform(win, src.transform)
    outside = rasterio.features.geometry_mask(
        [local.geometry],
        out_shape=data.shape[-2:],
        transform=win_transform,
        all_touched=all_touched,
    )
    if in_nodata is not None and not _same_value(out_nodata, in_nodata):
        data[nodata_mask(data, in_nodata)] = out_nodata
    data[:, outside] = out_nodata
    return RasterArray(data, win_transform, src.crs, out_nodata)


def _same_value(a: float | int, b: float | int) -> bool:
    return a == b or (bool(np.isnan(a)) and bool(np.isnan(b)))


def read_raster(
    path: str | Path,
    *,
    band: int = 1,
    src_nodata: float | int | None = None,
    memory_budget: int | None = None,
) -> RasterArray:
    """Read one band of a (small) raster file entirely, with its grid and nodata."""
    with open_raster(path) as src:
        if not 1 <= band <= src.count:
            raise RasterError(f"{path}: no band {band} (has {src.count})")
        itemsize = np.dtype(src.dtypes[0]).itemsize
        check_budget(str(path), src.height, src.width, itemsize=itemsize, budget=memory_budget)
        nodata = src_nodata if src_nodata is not None else src.nodata
        return RasterArray(src.read(band), src.transform, src.crs, nodata)


def write_cog(
    raster: RasterArray,
    path: str | Path,
    *,
    compress: str = "DEFLATE",
    blocksize: int = 256,
    tags: dict[str, Any] | None = None,
    scales: list[float] | None = None,
    offsets: list[float] | None = None,
    overview_resampling: str = "nearest",
) -> Path:
    """Write a Cloud Optimized GeoTIFF with nodata set, to a temp name renamed when complete."""
    arr = raster.array if raster.array.ndim == 3 else raster.array[np.newaxis]
    if raster.nodata is None:
        raise RasterError(f"refusing to write {path} without a nodata value")
    if raster.crs is None:
        raise RasterError(f"refusing to write {path} without a CRS")
    dest = Path(path)
    profile = {
        "driver": "GTiff",
        "height": arr.shape[1],
        "width": arr.shape[2],
        "count": arr.shape[0],
        "dtype": arr.dtype,
        "crs": rio_crs(raster.crs),
        "transform": raster.transform,
        "nodata": raster.nodata,
    }
    predictor = "3" if arr.dtype.kind == "f" else "2"
    with atomic_path(dest) as tmp, MemoryFile() as mem, mem.open(**profile) as ds:
        ds.write(arr)
        if tags:
            ds.update_tags(**{k: str(v) for k, v in tags.items()})
        if scales:
            ds.scales = scales
        if offsets:
            ds.offsets = offsets
        rasterio.shutil.copy(
            ds,
            tmp,
            driver="COG",
            COMPRESS=compress,
            PREDICTOR=predictor,
            BLOCKSIZE=blocksize,
            OVERVIEWS="AUTO",
            OVERVIEW_RESAMPLING=overview_resampling.upper(),
            NUM_THREADS="1",
        )
    return dest


def clip_raster(
    path: str | Path,
    roi: ROI,
    dest: str | Path,
    *,
    bands: list[int] | None = None,
    nodata: float | int | None = None,
    all_touched: bool = False,
    src_nodata: float | int | None = None,
    memory_budget: int | None = None,
) -> Path:
    """Clip a raster file to the ROI (windowed read, source CRS kept) and write it as COG.

    ``src_nodata`` overrides or supplies the input's nodata tag (see :func:`clip_dataset`).
    """
    with open_raster(path) as src:
        clipped = clip_dataset(
            src,
            roi,
            bands=bands,
            nodata=nodata,
            all_touched=all_touched,
            name=str(path),
            src_nodata=src_nodata,
            memory_budget=memory_budget,
        )
        tags = src.tags()
        scales = [src.scales[i - 1] for i in (bands or range(1, src.count + 1))]
        offsets = [src.offsets[i - 1] for i in (bands or range(1, src.count + 1))]
    tags.update({"terrapipe_source": Path(path).name, "terrapipe_roi": roi.label})
    return write_cog(clipped, dest, tags=tags, scales=scales, offsets=offsets)
