"""``ndvi-timeseries`` — a time series, computed incrementally.

    region ──> dates ─────────────map──> ndvi (one per date) ──> series ──> publish
          └──> villages ──> coverage ───────┘

``coverage`` (which cells each village covers, exactextract) is computed once for the
ROI's grid and reused by every date; it does not depend on the list of dates, so adding
a date keeps it cached.

For every date of the region's red/NIR bands (optionally between ``begin`` and ``end``):
NDVI over the ROI as a COG and the mean NDVI of each village (coverage-weighted,
exactextract). ``series`` joins the dates into one table (GeoParquet-free Parquet and CSV)
and a PNG chart. A date that was already computed is cached, so adding dates computes
only the new ones.
"""

from __future__ import annotations

import datetime as dt

from terrapipe.core.task import Param
from terrapipe.core.workflow import Workflow
from terrapipe.errors import InvalidInput
from terrapipe.pipelines.common import Publish, Region, RegionTask, artifact_name, layer_output
from terrapipe.pipelines.facilities_proximity import VillagesInRoi

DATASET = "ndvi-timeseries"


def _date(text: str, name: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"parameter {name!r}: {text!r} is not a date (YYYY-MM-DD)") from None


class Dates(RegionTask):
    """The dates with red/NIR bands, between ``begin`` and ``end`` when given."""

    name = "dates"
    version = 1
    params = {
        "begin": Param(str, default="", help="first date, YYYY-MM-DD"),
        "end": Param(str, default="", help="last date, YYYY-MM-DD"),
    }

    def run(self, ctx):

        _roi_out, _roi, manifest = self.region(ctx)
        begin, end = _date(ctx.params["begin"], "begin"), _date(ctx.params["end"], "end")
        dates = [
            d for d in manifest.dates if (begin is None or d >= begin) and (end is None or d <= end)
        ]
        if not dates:
            raise InvalidInput(
                f"no red/NIR dates between {begin or 'the start'} and {end or 'the end'}; "
                f"the data has {manifest.dates[0]} to {manifest.dates[-1]}"
            )
        return [d.isoformat() for d in dates]


class Coverage(RegionTask):
    """Which cells of the ROI's grid each village covers, and by how much: computed once
    (exactextract) and reused by every date, since all dates share one grid."""

    name = "coverage"
    version = 1

    def run(self, ctx):
        from terrapipe.geo.timeseries import ndvi_for_roi
        from terrapipe.geo.vector import read_vector
        from terrapipe.geo.zonal import zone_coverage

        _roi_out, roi, manifest = self.region(ctx)
        red, nir = manifest.band_paths(manifest.dates[0])  # any date: only the grid matters
        grid = ndvi_for_roi(red, nir, roi)
        zones = read_vector(ctx.inputs["villages"]["villages"])
        path = ctx.artifact_path("coverage.npz")
        zone_coverage(grid, zones).save(path)
        return {"coverage": path, "zones": len(zones)}


class NdviDate(RegionTask):
    """NDVI of one date over the ROI (COG) and its coverage-weighted mean per village."""

    name = "ndvi"
    version = 1

    def inputs(self, ctx):
        from terrapipe.sample.generate import load_manifest

        manifest = load_manifest(ctx.inputs["region"]["data"])
        return list(manifest.band_paths(ctx.item)) if manifest else []

    def run(self, ctx):
        from terrapipe.geo.raster import write_cog
        from terrapipe.geo.timeseries import date_zone_means, ndvi_for_roi
        from terrapipe.geo.vector import read_vector
        from terrapipe.geo.zonal import ZoneCoverage

        roi_out, roi, manifest = self.region(ctx)
        red, nir = manifest.band_paths(ctx.item)
        ndvi = ndvi_for_roi(red, nir, roi)
        coverage = ZoneCoverage.load(ctx.inputs["coverage"]["coverage"])
        coverage.check_grid(ndvi.transform, ndvi.shape, name=f"NDVI of {ctx.item}")
        out = ctx.artifact_path(
            f"{artifact_name(DATASET, roi_out, ctx.task_version, 'tif')[:-4]}_{ctx.item}.tif"
        )
        write_cog(ndvi, out)
        zones = read_vector(ctx.inputs["villages"]["villages"])
        table = date_zone_means(ndvi.array, coverage, when=ctx.item)
        table["village_id"] = table["zone"].map(zones["village_id"])
        means = ctx.artifact_path("zone_means.parquet")
        table.to_parquet(means, index=False)
        return {"date": ctx.item, "ndvi": out, "zone_means": means, "red": red, "nir": nir}


class Series(RegionTask):
    """Join the per-date means into one table and a chart."""

    name = "series"
    version = 1

    def run(self, ctx):
        import pandas as pd

        from terrapipe.geo.timeseries import (
            plot_series,
            series_table,
        )
        from terrapipe.geo.vector import read_vector

        roi_out = ctx.inputs["region"]["roi"]
        per_date = ctx.inputs["ndvi"]
        table = series_table(pd.read_parquet(d["zone_means"]) for d in per_date)
        zones = read_vector(ctx.inputs["villages"]["villages"])
        names = dict(zip(zones["village_id"], zones["name"], strict=False))
        table["village"] = table["village_id"].map(names)
        out = ctx.artifact_path(artifact_name("ndvi-series", roi_out, ctx.task_version, "parquet"))
        table.to_parquet(out, index=False)
        csv = out.with_suffix(".csv")
        table.to_csv(csv, index=False)
        chart = ctx.artifact_path(artifact_name("ndvi-chart", roi_out, ctx.task_version, "png"))
        plot_series(
            table, chart, group="village", title=f"Mean NDVI per village · {roi_out['label']}"
        )
        rasters = [d["ndvi"] for d in per_date]
        sources = [p for d in per_date for p in (d["red"], d["nir"])]
        return {
            "series": layer_output(
                ctx,
                dataset="ndvi-series",
                kind="table",
                files=[chart, out, csv],
                roi=roi_out,
                derived_from=sources,
                properties={"dates": [d["date"] for d in per_date], "zones": len(zones)},
            ),
            "rasters": layer_output(
                ctx,
                dataset="ndvi",
                kind="raster",
                files=rasters,
                roi=roi_out,
                derived_from=sources,
                properties={"dates": [d["date"] for d in per_date]},
            ),
        }


workflow = Workflow(
    DATASET,
    version=1,
    category="time series",
    description="NDVI per date and mean NDVI per village, incremental",
)
workflow.add_node(Region())
workflow.add_node(Dates(), "region")
workflow.add_node(VillagesInRoi(), "region")
workflow.add_node(Coverage(), ["region", "villages"])
workflow.add_node(NdviDate(), ["region", "villages", "coverage", "dates"], map_over="dates")
workflow.add_node(Series(), ["region", "villages", "ndvi"])
workflow.add_node(Publish(), "series")
