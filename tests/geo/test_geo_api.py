"""The public surface of terrapipe.geo, pinned: changing it is a deliberate act."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import terrapipe.geo

PUBLIC = {
    "crs": ["parse_crs", "rio_crs"],
    "grid": ["bounds_window", "grid_bounds"],
    "naming": ["fold", "layer_name", "output_path", "roi_slug", "slugify"],
    "roi": [
        "ADMIN_LEVELS", "ROI", "check_overlap", "make_roi", "parse_crs", "parse_levels",
        "parse_roi", "roi_from_admin", "roi_from_bbox", "roi_from_file", "roi_from_geojson",
        "roi_from_wkt", "roi_kind", "clip_to_footprint", "footprint", "wrap_longitudes",
    ],
    "raster": [
        "RasterArray", "clip_dataset", "clip_raster", "default_nodata", "describe_raster",
        "open_raster", "read_raster", "rio_crs", "roi_window", "write_cog",
        "DEFAULT_MEMORY_BUDGET", "check_budget", "nodata_mask",
    ],
    "vector": [
        "clip_vector", "dissolve", "metric_crs", "nearest_distance", "read_vector",
        "spatial_join", "write_vector",
    ],
    "zonal": ["STATS", "ZoneCoverage", "zonal_stats", "zone_coverage"],
    "hydrology": [
        "ORDER_NODATA", "d8_directions", "flow_accumulation", "flow_directions",
        "order_area_by_zone", "stream_lines", "stream_mask", "strahler_order",
    ],
    "timeseries": [
        "date_zone_means", "ndvi", "ndvi_for_roi", "ndvi_from_files", "plot_series", "region_mean",
        "series_table",
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_names_are_pinned(name):
    module = importlib.import_module(f"terrapipe.geo.{name}")
    assert sorted(module.__all__) == sorted(PUBLIC[name])
    for attr in module.__all__:
        assert hasattr(module, attr)


def test_geo_imports_nothing_of_terrapipe_outside_geo_and_errors():
    """geo imports only geo and errors, and the stdlib-only atomic-write helper
    (``terrapipe.store.atomic``: the one accepted exception, DESIGN.md section 4)."""
    root = Path(terrapipe.geo.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
            elif isinstance(node, ast.Import):
                mod = node.names[0].name
            else:
                continue
            if mod.startswith("terrapipe"):
                allowed = mod in ("terrapipe.errors", "terrapipe.store.atomic")
                assert allowed or mod.startswith("terrapipe.geo"), (path, mod)
