"""NDVI series: 24 dates x 500 zones, full series vs one added date, and coverage reuse.

Red/NIR pairs (1000x1000 uint16, scale 0.0001) for 24 dates are generated into a temp dir.
Measured at the function level, median of 3 (interleaved):

- full series: ``zone_coverage`` once, then per date ``ndvi_from_files`` (zone window only)
  and ``date_zone_means``; ``series_table`` at the end;
- one added date: the same for a single date with the coverage already computed (what the
  incremental workflow does when it keeps the coverage), and with the coverage recomputed;
- baseline: exactextract called once per date on that date's NDVI (``zonal_stats``).

    .venv/bin/python benchmarks/ndvi_series.py [--dates 24] [--zones 500] [--size 1000]

Targets (issue 3): one added date < 1/10 of the full series; report the reuse gain.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine

CRS = "EPSG:32644"
SCALE = 0.0001


def make_bands(folder: Path, n_dates: int, size: int) -> tuple[list, Affine]:
    rng = np.random.default_rng(0)
    transform = Affine(10.0, 0, 400_000.0, 0, -10.0, 2_400_000.0)
    y, x = np.mgrid[0:size, 0:size].astype("float32") / size
    pattern = 0.5 + 0.3 * np.sin(8 * x) * np.cos(6 * y)
    profile = dict(
        driver="GTiff", width=size, height=size, count=1, dtype="uint16", crs=CRS,
        transform=transform, nodata=0, tiled=True, blockxsize=256, blockysize=256,
        compress="deflate",
    )  # fmt: skip
    dates = []
    for i in range(n_dates):
        when = date(2024, 1, 8) + timedelta(days=15 * i)
        season = 0.6 + 0.4 * np.sin(2 * np.pi * i / n_dates)
        ndvi = np.clip(pattern * season + rng.normal(0, 0.02, pattern.shape), -0.1, 0.95)
        nir = 0.3 + 0.1 * ndvi
        red = nir * (1 - ndvi) / (1 + ndvi)
        paths = []
        for name, refl in (("red", red), ("nir", nir)):
            path = folder / f"{name}_{when.isoformat()}.tif"
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(np.clip(np.round(refl / SCALE), 1, 65535).astype("uint16"), 1)
                dst.scales = [SCALE]
            paths.append(path)
        dates.append((when, *paths))
    return dates, transform


def make_zones(n: int, size: int, transform: Affine) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(1)
    extent = size * transform.a
    xy = rng.uniform(500, extent - 500, (n, 2))
    geoms = [
        shapely.Point(transform.c + x, transform.f - y).buffer(rng.uniform(80, 400), quad_segs=4)
        for x, y in xy
    ]
    return gpd.GeoDataFrame({"zone_id": np.arange(n)}, geometry=geoms, crs=CRS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=24)
    parser.add_argument("--zones", type=int, default=500)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from terrapipe.geo.timeseries import date_zone_means, ndvi_from_files, series_table
    from terrapipe.geo.zonal import zonal_stats, zone_coverage

    with tempfile.TemporaryDirectory(prefix="tp-bench-ndvi-") as tmp:
        dates, transform = make_bands(Path(tmp), args.dates, args.size)
        zones = make_zones(args.zones, args.size, transform)

        def one_date(cov, when, red, nir):
            values = ndvi_from_files(red, nir, window=cov.window).array
            return date_zone_means(values, cov, when=when)

        def full_series():
            cov = zone_coverage(dates[0][1], zones)
            return series_table(one_date(cov, *d) for d in dates)

        cov_cached = zone_coverage(dates[0][1], zones)

        def added_date_cached():
            return one_date(cov_cached, *dates[-1])

        def added_date_fresh():
            return one_date(zone_coverage(dates[0][1], zones), *dates[-1])

        def coverage_only():
            return zone_coverage(dates[0][1], zones)

        def per_date_exactextract():
            frames = []
            for _when, red, nir in dates:
                ndvi = ndvi_from_files(red, nir)
                frames.append(zonal_stats(ndvi, zones, stats=["mean"])["mean"].to_numpy())
            return np.column_stack(frames)

        fns = {
            "full": full_series,
            "added_cached": added_date_cached,
            "added_fresh": added_date_fresh,
            "coverage": coverage_only,
            "baseline": per_date_exactextract,
        }
        times: dict = {k: [] for k in fns}
        results: dict = {}
        for _ in range(args.repeat):
            for name, fn in fns.items():
                start = time.perf_counter()
                results[name] = fn()
                times[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}

        table = results["full"]
        ours = table.pivot(index="zone", columns="date", values="ndvi_mean").to_numpy()
        np.testing.assert_allclose(ours, results["baseline"], rtol=1e-5, atol=1e-6)

    n = args.dates
    print(f"NDVI series: {n} dates x {args.zones} zones on {args.size}x{args.size} red/NIR")
    print(f"  full series (coverage once + {n} dates)  median {med['full']:7.3f} s")
    print(f"    of which coverage                     median {med['coverage']:7.3f} s")
    print(f"  one added date, coverage kept           median {med['added_cached']:7.3f} s")
    print(f"  one added date, coverage recomputed     median {med['added_fresh']:7.3f} s")
    print(f"  exactextract once per date (baseline)   median {med['baseline']:7.3f} s")
    print(
        f"  added date / full series: {med['added_cached'] / med['full']:.3f} (coverage kept), "
        f"{med['added_fresh'] / med['full']:.3f} (recomputed)   target < 0.100"
    )
    print(
        f"  gain of coverage reuse over per-date exactextract: {med['baseline'] / med['full']:.2f}x"
    )


if __name__ == "__main__":
    main()
