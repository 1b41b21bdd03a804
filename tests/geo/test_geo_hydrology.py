"""Hydrology on a hand-made 9x9 DEM whose drainage network is known.

Two first-order channels (from the NW and NE corners) meet at (4, 4); the trunk runs south
down column 4 to (6, 4), where a third first-order channel joins from the west, then turns
south-east to the outlet at (8, 5). Strahler: the three tributaries are order 1, the trunk
below (4, 4) is 2. (pyflwdir's priority-flood D8 sends a cell to its lowest neighbour, so the
trunk bends away from the tributary's mouth to keep the junction unambiguous.)
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from terrapipe.errors import GeoInputError, RasterError
from terrapipe.geo.hydrology import (
    ORDER_NODATA,
    d8_directions,
    flow_accumulation,
    flow_directions,
    order_area_by_zone,
    strahler_order,
    stream_lines,
    stream_mask,
)
from terrapipe.geo.raster import RasterArray

T = Affine(10.0, 0.0, 0.0, 0.0, -10.0, 90.0)
LEFT = [(1, 1), (2, 2), (3, 3)]
RIGHT = [(1, 7), (2, 6), (3, 5)]
TRIB = [(6, 1), (6, 2), (6, 3)]
TRUNK = [(4, 4), (5, 4), (6, 4), (7, 5), (8, 5)]


def _dem() -> np.ndarray:
    r, c = np.mgrid[0:9, 0:9]
    dem = (70.0 - 4 * r + 3 * np.abs(c - 4)).astype("float32")
    for path, start in ((LEFT, 30), (RIGHT, 30), (TRIB, 34)):
        for i, cell in enumerate(path):
            dem[cell] = start - 2 * i
    for i, cell in enumerate(TRUNK):
        dem[cell] = 23 - 3 * i
    dem[8, 5] = 5
    return dem


def _mask(cells) -> np.ndarray:
    m = np.zeros((9, 9), bool)
    for cell in cells:
        m[cell] = True
    return m


def test_d8_and_accumulation_follow_the_channels():
    flw = flow_directions(_dem(), transform=T)
    d8 = d8_directions(flw)
    # ESRI D8 codes: 2 = SE, 4 = S, 8 = SW, 1 = E
    assert [d8[c] for c in LEFT] == [2, 2, 2]
    assert [d8[c] for c in RIGHT] == [8, 8, 8]
    assert [d8[c] for c in TRIB] == [1, 1, 1]
    assert [d8[c] for c in TRUNK[:-1]] == [4, 4, 2, 4]
    acc = flow_accumulation(flw)
    assert acc[8, 5] == 81  # every cell drains to the single outlet
    assert acc[4, 4] > acc[3, 3] + acc[3, 5]  # the confluence collects both branches
    assert flow_accumulation(flw, unit="m2")[8, 5] == pytest.approx(81 * 100)


def test_strahler_order_on_known_network():
    flw = flow_directions(_dem(), transform=T)
    order = strahler_order(flw, _mask(LEFT + RIGHT + TRIB + TRUNK))
    expected = np.zeros((9, 9), "uint8")
    for cell in LEFT + RIGHT + TRIB:
        expected[cell] = 1
    for cell in TRUNK:
        expected[cell] = 2
    np.testing.assert_array_equal(order, expected)


def test_stream_mask_by_threshold_includes_the_trunk():
    flw = flow_directions(_dem(), transform=T)
    streams = stream_mask(flow_accumulation(flw), threshold=20)
    assert all(streams[c] for c in TRUNK)
    assert not streams[0, 0]
    with pytest.raises(GeoInputError, match="threshold"):
        stream_mask(flow_accumulation(flw), threshold=0)


def test_stream_lines_carry_order():
    flw = flow_directions(_dem(), transform=T)
    order = strahler_order(flw, _mask(LEFT + RIGHT + TRIB + TRUNK))
    lines = stream_lines(flw, order, crs="EPSG:32644", accumulation=flow_accumulation(flw))
    assert isinstance(lines, gpd.GeoDataFrame) and lines.crs.to_epsg() == 32644
    assert sorted(lines["order"].tolist()) == [1, 1, 1, 2, 2]
    trunk = shapely.LineString([(45, 45), (45, 35), (45, 25), (55, 15), (55, 5)])  # centres
    order2 = shapely.line_merge(lines[lines["order"] == 2].union_all())
    assert order2.hausdorff_distance(trunk) < 1e-9 and order2.length == pytest.approx(trunk.length)
    # first-order lines start at the channel heads
    heads = {(15.0, 75.0), (75.0, 75.0), (15.0, 25.0)}
    ends = {tuple(map(float, g.coords[0])) for g in lines[lines["order"] == 1].geometry}
    ends |= {tuple(map(float, g.coords[-1])) for g in lines[lines["order"] == 1].geometry}
    assert heads <= ends


def test_order_area_by_zone_counts_cells():
    flw = flow_directions(_dem(), transform=T)
    order = strahler_order(flw, _mask(LEFT + RIGHT + TRIB + TRUNK))
    order[0, :] = ORDER_NODATA  # a row without data
    zones = gpd.GeoDataFrame(
        {"zone": ["west", "all", "half out"]},
        geometry=[
            shapely.box(0, 0, 40, 90),  # cols 0..3
            shapely.box(0, 0, 90, 90),  # everything
            shapely.box(40, 0, 130, 90),  # cols 4..8 plus 4 columns east of the raster
        ],
        crs="EPSG:32644",
    )
    out = order_area_by_zone(RasterArray(order, T, "EPSG:32644", ORDER_NODATA), zones)
    # percentages of the whole zone area: a cell is 1/36 of "west", 1/81 of the other two
    assert out["pct_order_1"].tolist() == pytest.approx([100 * 6 / 36, 100 * 9 / 81, 100 * 3 / 81])
    assert out["pct_order_2"].tolist() == pytest.approx([0.0, 100 * 5 / 81, 100 * 5 / 81])
    assert out["pct_with_data"].tolist() == pytest.approx(
        [100 * 32 / 36, 100 * 72 / 81, 100 * 40 / 81]
    )


def test_bad_dem_is_rejected():
    with pytest.raises(RasterError, match="2-D"):
        flow_directions(np.zeros(5), transform=T)
    with pytest.raises(RasterError, match="no valid cells"):
        flow_directions(np.full((3, 3), -9999.0), transform=T, nodata=-9999.0)
