"""Write the sample region to a folder, with a ``manifest.json`` listing its files.

The manifest is written last (temp name, then rename), so its presence means the folder is
complete; generating again with the same seed into such a folder does nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from terrapipe.errors import InvalidInput
from terrapipe.store.atomic import atomic_write_text

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "SampleManifest",
    "generate_sample_region",
    "load_manifest",
]

GENERATOR_VERSION = 1
MANIFEST_NAME = "manifest.json"
DEFAULT_SEED = 42
REFLECTANCE_SCALE = 0.0001
STREAM_THRESHOLD_CELLS = 300  # 0.48 km2 at 40 m cells
CLOUDY_MONTHS = (2, 7, 8)


@dataclass(frozen=True)
class SampleManifest:
    """The parsed manifest of a sample-region folder, with helpers that give absolute paths."""

    directory: Path
    data: dict[str, Any]

    def path(self, key: str) -> Path:
        """Absolute path of a file listed under ``files`` (e.g. ``"dem"``)."""
        files = self.data["files"]
        if key not in files:
            raise InvalidInput(f"sample region has no file {key!r} (has {sorted(files)})")
        return self.directory / files[key]

    @property
    def dates(self) -> list[date]:
        return [date.fromisoformat(d["date"]) for d in self.data["bands"]]

    def band_paths(self, when: date | str) -> tuple[Path, Path]:
        """The (red, NIR) files of one date."""
        key = when.isoformat() if isinstance(when, date) else str(when)
        for d in self.data["bands"]:
            if d["date"] == key:
                return self.directory / d["red"], self.directory / d["nir"]
        raise InvalidInput(f"sample region has no bands for date {key!r}")

    def all_paths(self) -> list[Path]:
        paths = [self.directory / f for f in self.data["files"].values()]
        for d in self.data["bands"]:
            paths += [self.directory / d["red"], self.directory / d["nir"]]
        return paths

    def to_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), **self.data}


def load_manifest(directory: str | Path) -> SampleManifest | None:
    """The manifest of a complete sample folder, or None if absent, unreadable or incomplete."""
    folder = Path(directory).expanduser().resolve()
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "files" not in data or "bands" not in data:
        return None
    manifest = SampleManifest(folder, data)
    if not all(p.is_file() for p in manifest.all_paths()):
        return None
    return manifest


def _write_json(data: dict[str, Any], dest: Path) -> None:
    atomic_write_text(dest, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def generate_sample_region(directory: str | Path, *, seed: int = DEFAULT_SEED) -> SampleManifest:
    """Generate the fictional sample region into ``directory`` (no-op if already complete)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInput(f"invalid seed: {seed!r} (expected an integer >= 0)")
    folder = Path(directory).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"not a directory: {folder}")
    existing = load_manifest(folder)
    if (
        existing is not None
        and existing.data.get("seed") == seed
        and existing.data.get("generator_version") == GENERATOR_VERSION
    ):
        return existing
    # heavy imports (pyflwdir compiles with numba) only when there is something to generate
    import numpy as np

    from terrapipe.geo.hydrology import (
        flow_accumulation,
        flow_directions,
        strahler_order,
        stream_lines,
        stream_mask,
    )
    from terrapipe.geo.raster import RasterArray, write_cog
    from terrapipe.geo.vector import write_vector
    from terrapipe.sample import synth

    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_NAME).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    crs = synth.REGION_CRS

    # terrain and hydrology
    dem = synth.make_dem(rng)
    dem_t = synth.grid_transform(synth.DEM_RES)
    write_cog(
        RasterArray(dem, dem_t, crs, -9999.0),
        folder / "dem.tif",
        tags={"units": "m", "description": "synthetic elevation"},
        overview_resampling="average",
    )
    flw = flow_directions(dem, transform=dem_t, nodata=-9999.0)
    acc = flow_accumulation(flw, unit="cell").astype("float32")
    write_cog(
        RasterArray(acc, dem_t, crs, -9999.0),
        folder / "flow_accumulation.tif",
        tags={"units": "cells", "cell_area_m2": synth.DEM_RES**2},
    )
    order = strahler_order(flw, stream_mask(acc, threshold=STREAM_THRESHOLD_CELLS))
    lines = stream_lines(flw, order, crs=crs, accumulation=acc)
    write_vector(lines, folder / "drainage_lines.parquet")

    # admin units, villages, facilities (vectors in EPSG:4326, as usually distributed)
    admin = synth.make_admin(rng)
    villages = synth.make_villages(rng, admin)
    facilities = synth.make_facilities(rng)
    write_vector(admin.to_crs(4326), folder / "admin_boundaries.parquet")
    write_vector(villages.to_crs(4326), folder / "villages.parquet")
    write_vector(facilities.to_crs(4326), folder / "facilities.parquet")

    # land cover and optical bands
    opt_t = synth.grid_transform(synth.OPTICAL_RES)
    landcover = synth.make_landcover(rng, dem)
    write_cog(
        RasterArray(landcover, opt_t, crs, 0),
        folder / "landcover.tif",
        tags={f"class_{k}": v for k, v in synth.LANDCOVER_CLASSES.items()},
    )
    bands = []
    for when in synth.sample_dates(12):
        red, nir = synth.make_bands(
            rng, landcover, when, cloudy=when.month in CLOUDY_MONTHS, scale=REFLECTANCE_SCALE
        )
        entry = {"date": when.isoformat()}
        for name, arr in (("red", red), ("nir", nir)):
            rel = f"optical/{name}_{when.isoformat()}.tif"
            write_cog(
                RasterArray(arr, opt_t, crs, 0),
                folder / rel,
                tags={"band": name, "date": when.isoformat()},
                scales=[REFLECTANCE_SCALE],
                offsets=[0.0],
            )
            entry[name] = rel
        bands.append(entry)

    first = admin.iloc[0]
    west, south, east, north = admin.to_crs(4326).total_bounds
    data = {
        "name": "terrapipe sample region",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "crs": crs,
        "files": {
            "admin_boundaries": "admin_boundaries.parquet",
            "dem": "dem.tif",
            "flow_accumulation": "flow_accumulation.tif",
            "drainage_lines": "drainage_lines.parquet",
            "facilities": "facilities.parquet",
            "villages": "villages.parquet",
            "landcover": "landcover.tif",
        },
        "bands": bands,
        "admin_levels": ["state", "district", "block"],
        "facility_kinds": sorted(synth.FACILITY_COUNTS),
        "landcover_classes": {str(k): v for k, v in synth.LANDCOVER_CLASSES.items()},
        "reflectance_scale": REFLECTANCE_SCALE,
        "dem_resolution_m": synth.DEM_RES,
        "optical_resolution_m": synth.OPTICAL_RES,
        "stream_threshold_cells": STREAM_THRESHOLD_CELLS,
        "bbox_4326": [float(v) for v in (west, south, east, north)],
        "example_roi": f"{first['state']}/{first['district']}/{first['block']}",
    }
    _write_json(data, folder / MANIFEST_NAME)
    return SampleManifest(folder, data)
