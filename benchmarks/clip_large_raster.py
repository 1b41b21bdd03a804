"""Clip a 1 km square from a tiled 40000x40000 COG and from a 4000x4000 one.

Both sources are Cloud Optimized GeoTIFFs (10 m cells, uint8, DEFLATE, 512-px tiles) built
with GDAL's COG driver from a cheap repeating pattern, in a temp dir deleted afterwards.
Each source is clipped in a fresh child process: one warm-up clip elsewhere (imports, PROJ,
drivers), then the peak-RSS mark is reset and 5 clips are timed; it reports their median
and the peak RSS growth above the warmed-up process, so the figures are the clip's own.
Time and memory must not grow with the source size (windowed reads).

    .venv/bin/python benchmarks/clip_large_raster.py [--big 40000] [--small 4000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CRS = "EPSG:32644"
RES = 10.0
WEST, NORTH = 300_000.0, 2_600_000.0


def build_cog(path: Path, size: int) -> float:
    """A ``size`` x ``size`` COG of a repeating 4000x4000 tile (VRT mosaic -> COG driver)."""
    import numpy as np
    import rasterio
    import rasterio.shutil
    from affine import Affine

    start = time.perf_counter()
    tile = 4000
    base = path.with_name("base.tif")
    if not base.exists():
        y, x = np.mgrid[0:tile, 0:tile]
        data = ((x // 7 + y // 5) % 251).astype("uint8")
        with rasterio.open(
            base, "w", driver="GTiff", width=tile, height=tile, count=1, dtype="uint8",
            crs=CRS, transform=Affine(RES, 0, WEST, 0, -RES, NORTH), nodata=255,
            tiled=True, blockxsize=512, blockysize=512, compress="deflate",
        ) as dst:  # fmt: skip
            dst.write(data, 1)
    n = -(-size // tile)
    sources = "".join(
        f"""<SimpleSource><SourceFilename relativeToVRT="1">{base.name}</SourceFilename>
<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{tile}" ySize="{tile}"/>
<DstRect xOff="{i * tile}" yOff="{j * tile}" xSize="{tile}" ySize="{tile}"/></SimpleSource>"""
        for i in range(n)
        for j in range(n)
    )
    vrt = path.with_suffix(".vrt")
    vrt.write_text(
        f"""<VRTDataset rasterXSize="{size}" rasterYSize="{size}">
<SRS>{CRS}</SRS><GeoTransform>{WEST}, {RES}, 0, {NORTH}, 0, {-RES}</GeoTransform>
<VRTRasterBand dataType="Byte" band="1"><NoDataValue>255</NoDataValue>{sources}
</VRTRasterBand></VRTDataset>"""
    )
    with rasterio.Env(GDAL_CACHEMAX=256), rasterio.open(vrt) as src:
        rasterio.shutil.copy(
            src, path, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=512, NUM_THREADS="ALL_CPUS",
            OVERVIEW_RESAMPLING="NEAREST", BIGTIFF="IF_SAFER",
        )  # fmt: skip
    vrt.unlink()
    return time.perf_counter() - start


def _rss_kb(field: str) -> int:
    """Current (VmRSS) or peak (VmHWM) resident memory of this process, in kB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> None:
    """Reset the peak-RSS mark so VmHWM measures only what follows (Linux >= 4.0)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def child(source: str, out_dir: str, repeat: int) -> None:
    """In a fresh process: clip a 1 km square ``repeat`` times; print JSON timings and RSS."""
    from terrapipe.geo.raster import clip_raster
    from terrapipe.geo.roi import parse_roi

    # a 1 km square, 2.5 km in from the north-west corner (inside both sources)
    x0, y0 = WEST + 2_503.0, NORTH - 3_503.0
    roi = parse_roi(f"{x0},{y0},{x0 + 1000},{y0 + 1000}", crs=CRS)
    other = parse_roi(f"{x0 - 1500},{y0},{x0 - 500},{y0 + 1000}", crs=CRS)
    clip_raster(source, other, Path(out_dir) / "warmup.tif")  # imports, PROJ, GDAL drivers
    base_rss = _rss_kb("VmRSS")
    _reset_peak()
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        clip_raster(source, roi, Path(out_dir) / f"clip_{Path(source).stem}_{i}.tif")
        times.append(time.perf_counter() - start)
    peak = _rss_kb("VmHWM")
    print(
        json.dumps(
            {
                "median_s": statistics.median(times),
                "rss_growth_kb": peak - base_rss,
                "peak_rss_kb": peak,
            }
        )
    )


def measure(source: Path, out_dir: Path, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(source), str(out_dir), str(repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=40_000)
    parser.add_argument("--small", type=int, default=4_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    from rio_cogeo.cogeo import cog_validate

    with tempfile.TemporaryDirectory(prefix="tp-bench-clip-") as tmp:
        folder = Path(tmp)
        small, big = folder / "small.tif", folder / "big.tif"
        t_small = build_cog(small, args.small)
        t_big = build_cog(big, args.big)
        for p in (small, big):
            assert cog_validate(str(p))[0], p
        size_mb = {p.name: p.stat().st_size / 1e6 for p in (small, big)}
        r_small = measure(small, folder, args.repeat)
        r_big = measure(big, folder, args.repeat)
        clip = next(folder.glob("clip_big_*.tif"))
        assert cog_validate(str(clip))[0]

    print("clip a 1 km square (100x100 cells) to a COG")
    print(f"  sources built in {t_small:.1f} s / {t_big:.1f} s "
          f"({size_mb['small.tif']:.1f} MB / {size_mb['big.tif']:.1f} MB)")  # fmt: skip
    for label, size, r in (("small", args.small, r_small), ("big", args.big, r_big)):
        print(
            f"  {label:<5} {size}x{size:<6}  median {r['median_s'] * 1000:7.1f} ms   "
            f"peak RSS {r['peak_rss_kb'] / 1024:6.1f} MB "
            f"(growth during the clips {r['rss_growth_kb'] / 1024:5.1f} MB)"
        )
    print(
        f"  ratio big/small: time {r_big['median_s'] / r_small['median_s']:.2f}x, "
        f"peak memory {r_big['peak_rss_kb'] / r_small['peak_rss_kb']:.2f}x "
        f"(growth {(r_big['rss_growth_kb'] - r_small['rss_growth_kb']) / 1024:+.1f} MB) "
        f"(source is {(args.big / args.small) ** 2:.0f}x larger; target ~1x)"
    )


if __name__ == "__main__":
    main()
