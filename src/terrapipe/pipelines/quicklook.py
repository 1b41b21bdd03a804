"""PNG quicklooks of layers for reports and STAC overviews (matplotlib, Agg backend)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from terrapipe.store.atomic import atomic_path

MAX_PIXELS = 600


def quicklook(source: Path, dest: Path, *, title: str = "") -> Path:
    """Render ``source`` (raster, vector or a PNG chart) to a small PNG at ``dest``."""
    source, dest = Path(source), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    suffix = source.suffix.lower()
    if suffix == ".png":
        shutil.copyfile(source, dest)
        return dest
    fig = Figure(figsize=(5, 5), dpi=100)  # no pyplot: tasks render in threads
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if suffix in (".tif", ".tiff"):
        _raster(fig, ax, source)
    else:
        _vector(ax, source)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    fig.tight_layout()
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png")
    return dest


def _raster(fig, ax, path: Path) -> None:
    import rasterio

    with rasterio.open(path) as src:
        scale = max(1, int(np.ceil(max(src.width, src.height) / MAX_PIXELS)))
        data = src.read(
            1, out_shape=(max(1, src.height // scale), max(1, src.width // scale)), masked=True
        ).astype("float64")
    values = data.compressed()
    if values.size:
        lo, hi = np.percentile(values, [2, 98])
        image = ax.imshow(data, cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1)
        fig.colorbar(image, ax=ax, shrink=0.7)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center")


def _vector(ax, path: Path) -> None:
    import geopandas as gpd

    gdf = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
    if "geometry" not in gdf or gdf.empty:
        ax.text(0.5, 0.5, "no features", ha="center", va="center")
        return
    column = next((c for c in ("order", "dist_school_m", "pct_order_1", "mean") if c in gdf), None)
    gdf.plot(ax=ax, column=column, legend=column is not None, linewidth=0.8, markersize=4)
