"""geo.grid: the window covering some bounds, checked against pixel edges computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window

from terrapipe.geo.grid import bounds_window, grid_bounds

# 30 m pixels, 50 rows x 80 cols, north-west corner at (500000, 2000000)
TRANSFORM = Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 2_000_000.0)
SHAPE = (50, 80)


def _expected(bounds: tuple[float, float, float, float]) -> Window | None:
    """Every pixel whose extent overlaps the bounds with positive area (numpy, no rasterio)."""
    west, south, east, north = bounds
    col_edges = 500_000.0 + 30.0 * np.arange(SHAPE[1] + 1)
    row_edges = 2_000_000.0 - 30.0 * np.arange(SHAPE[0] + 1)
    cols = np.nonzero((col_edges[:-1] < east) & (col_edges[1:] > west))[0]
    rows = np.nonzero((row_edges[1:] < north) & (row_edges[:-1] > south))[0]
    if cols.size == 0 or rows.size == 0:
        return None
    width, height = int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
    return Window(int(cols[0]), int(rows[0]), width, height)


@pytest.mark.parametrize(
    "bounds",
    [
        (500_300.0, 1_999_100.0, 500_900.0, 1_999_700.0),  # on pixel edges
        (500_301.0, 1_999_101.0, 500_899.0, 1_999_699.0),  # inside edge pixels
        (500_329.0, 1_999_071.0, 500_931.0, 1_999_729.0),  # barely into the next pixels
        (499_000.0, 1_998_000.0, 500_045.0, 2_001_000.0),  # past the grid: cut to it
        (502_390.0, 1_998_500.0, 503_000.0, 1_999_000.0),  # last column only
    ],
)
def test_the_window_holds_every_pixel_the_bounds_overlap(bounds):
    assert bounds_window(bounds, TRANSFORM, SHAPE) == _expected(bounds)


def test_float_noise_on_an_edge_pulls_in_no_extra_pixel():
    bounds = (500_300.0 - 1e-9, 1_999_100.0 - 1e-9, 500_900.0 + 1e-9, 1_999_700.0 + 1e-9)
    assert bounds_window(bounds, TRANSFORM, SHAPE) == Window(10, 10, 20, 20)


def test_bounds_outside_the_grid_give_no_window():
    far = (400_000.0, 1_900_000.0, 400_100.0, 1_900_100.0)
    assert bounds_window(far, TRANSFORM, SHAPE) is None
    touching = (502_400.0, 1_999_000.0, 502_500.0, 1_999_100.0)  # east of the last column
    assert bounds_window(touching, TRANSFORM, SHAPE) is None


def test_grid_bounds_are_the_outer_pixel_edges():
    assert grid_bounds(TRANSFORM, SHAPE) == (500_000.0, 1_998_500.0, 502_400.0, 2_000_000.0)
