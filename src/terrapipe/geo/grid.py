"""Raster grid geometry: the bounds of a grid and the pixel window covering some bounds.

Pure functions of an affine transform and a shape ``(rows, cols)``; every module that cuts
a raster to an area (geo.raster, geo.zonal, transfer.crop) uses these, so a window is
computed one way everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import rasterio.errors
import rasterio.transform
import rasterio.windows
from affine import Affine
from rasterio.windows import Window

__all__ = ["bounds_window", "grid_bounds"]

EDGE_TOLERANCE = 1e-6
"""Pixels of float noise tolerated when bounds lie on pixel edges (a bound 1e-9 pixel past
an edge does not pull in a whole extra row or column)."""


def grid_bounds(transform: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a grid of ``shape`` (rows, cols) on ``transform``."""
    rows, cols = shape
    west, south, east, north = rasterio.transform.array_bounds(rows, cols, transform)
    return (west, south, east, north)


def bounds_window(
    bounds: Sequence[float], transform: Affine, shape: tuple[int, int]
) -> Window | None:
    """The whole-pixel window covering ``bounds`` (in the grid's CRS), cut to the grid.

    Snapped outward: every pixel the bounds overlap by more than :data:`EDGE_TOLERANCE` of
    a pixel is in the window, so a clip never loses a partly covered edge pixel. The
    fractional window comes from :func:`rasterio.windows.from_bounds` and the cut from
    :meth:`Window.intersection`. rasterio's ``round_offsets``/``round_lengths`` are not
    used: since rasterio 1.3 they ignore ``op=`` (offsets floored with 0.1 pixel of slack,
    lengths rounded to nearest), which can drop a partly covered edge pixel. ``None`` when
    the bounds cover no whole pixel of the grid.
    """
    rows, cols = shape
    west, south, east, north = bounds
    win = rasterio.windows.from_bounds(west, south, east, north, transform=transform)
    col0 = math.floor(win.col_off + EDGE_TOLERANCE)
    row0 = math.floor(win.row_off + EDGE_TOLERANCE)
    col1 = math.ceil(win.col_off + win.width - EDGE_TOLERANCE)
    row1 = math.ceil(win.row_off + win.height - EDGE_TOLERANCE)
    if col1 <= col0 or row1 <= row0:
        return None
    try:
        return Window(col0, row0, col1 - col0, row1 - row0).intersection(Window(0, 0, cols, rows))
    except rasterio.errors.WindowError:  # no overlap with the grid
        return None
