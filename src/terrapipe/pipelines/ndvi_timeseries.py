"""``ndvi-timeseries`` — a time series, computed incrementally.

    region ──> dates ─────────────map──> ndvi (one per date) ──> series ──> publish
          └──> villages ──> coverage ───────┘

``coverage`` (which cells each village covers, exactextract) is computed once for the
ROI's grid and reused by every date; it does not depend on the list of dates, so adding
a date keeps it cached. A scene on another grid (another Landsat footprint) gets its own
coverage.

The scenes are parameter ``scenes`` (files, folders, globs or a catalog query) with
``bands`` saying which file or band is red and which NIR (``red:B4,nir:B5``,
``red:3,nir:4``; see :mod:`terrapipe.pipelines.scenes`); without ``scenes``, the data
folder's red/NIR bands. ``nodata`` overrides or supplies the bands' nodata (Landsat
Level-1 fills with 0 and carries no tag); ``scale`` / ``offset`` override the bands' scale
tags. For every date (optionally between ``begin`` and ``end``): NDVI over the ROI as a
COG and the mean NDVI of each village (coverage-weighted, exactextract). ``series`` joins
the dates into one table (Parquet and CSV) and a PNG chart. A date that was already
computed is cached, so adding dates computes only the new ones.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from terrapipe.core.task import Param
from terrapipe.core.workflow import Workflow
from terrapipe.errors import InvalidInput, RoiOutsideData
from terrapipe.pipelines.common import (
    Publish,
    Region,
    RegionInput,
    RegionTask,
    artifact_name,
    layer_output,
)
from terrapipe.pipelines.facilities_proximity import VILLAGES, VillagesInRoi
from terrapipe.pipelines.scenes import (
    Scene,
    find_scenes,
    is_catalog_query,
    one_per_date,
    over_roi,
    read_ndvi,
    sample_scenes,
    scene_paths,
)

DATASET = "ndvi-timeseries"
SCENES = RegionInput(
    "scenes",
    None,
    "optical scenes: files, folders or globs, comma separated, or catalog:{JSON criteria} "
    "(default: the sample's)",
    is_file=False,
)
SCENE_PARAMS = {
    "bands": Param(
        str, default="", help="red/NIR: file-name tokens red:B4,nir:B5 or band numbers red:3,nir:4"
    ),
}
NODATA_PARAM = {
    "nodata": Param(float, default=None, help="fill value of the bands (overrides their tag)"),
    "scale": Param(float, default=None, help="reflectance = DN * scale + offset (overrides tags)"),
    "offset": Param(float, default=None, help="reflectance offset, with scale (overrides tags)"),
}


def _date(text: str, name: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"parameter {name!r}: {text!r} is not a date (YYYY-MM-DD)") from None


class _ScenesTask(RegionTask):
    """A task that lists the scenes (``scenes`` + ``bands``, or the data folder's)."""

    def _footprint(self, ctx):
        """The ROI in EPSG:4326, to narrow a catalog query to the datasets over it."""
        _roi_out, roi = self.roi(ctx)
        return roi.to_crs(4326).geometry

    def scenes(self, ctx) -> list[Scene]:
        """The scenes over the ROI, by date (scenes elsewhere are left out)."""
        text = ctx.params.get("scenes")
        if text:
            geometry = self._footprint(ctx) if is_catalog_query(text) else None
            found = find_scenes(text, ctx.params.get("bands") or "", db=ctx.db, geometry=geometry)
            _roi_out, roi = self.roi(ctx)
            kept = over_roi(found, roi)
            if not kept:
                raise RoiOutsideData(
                    f"ROI {roi.label!r} meets none of the {len(found)} scene(s) in "
                    f"parameter 'scenes' ({found[0].red}, ...)"
                )
            return one_per_date(kept)
        manifest = self.manifest(ctx)
        if manifest is None:
            raise InvalidInput("no scenes: give scenes=FILES|FOLDER (and bands=...)")
        return sample_scenes(manifest)

    def scene_inputs(self, ctx) -> list[Path]:
        text = ctx.params.get("scenes")
        if text:
            geometry = self._footprint(ctx) if is_catalog_query(text) else None
            return scene_paths(text, db=ctx.db, geometry=geometry)
        manifest = self.manifest(ctx) if ctx.inputs.get("region") else None
        return [p for s in sample_scenes(manifest) for p in s.paths] if manifest else []


class Dates(_ScenesTask):
    """The scenes (one per date) between ``begin`` and ``end`` when given."""

    name = "dates"
    version = 2
    params = {
        "begin": Param(str, default="", help="first date, YYYY-MM-DD"),
        "end": Param(str, default="", help="last date, YYYY-MM-DD"),
        "scenes": Param(str, default="", help=SCENES.help),
        **SCENE_PARAMS,
    }

    def inputs(self, ctx):
        return self.scene_inputs(ctx)

    def run(self, ctx):
        begin, end = _date(ctx.params["begin"], "begin"), _date(ctx.params["end"], "end")
        scenes = self.scenes(ctx)
        chosen = [
            s
            for s in scenes
            if (begin is None or s.date >= begin.isoformat())
            and (end is None or s.date <= end.isoformat())
        ]
        if not chosen:
            raise InvalidInput(
                f"no red/NIR dates between {begin or 'the start'} and {end or 'the end'}; "
                f"the data has {scenes[0].date} to {scenes[-1].date}"
            )
        return [s.to_item() for s in chosen]


class Coverage(_ScenesTask):
    """Which cells of the ROI's grid each village covers, and by how much: computed once
    (exactextract) on the first scene's grid and reused by every date on that grid."""

    name = "coverage"
    version = 2
    params = {"scenes": Param(str, default="", help=SCENES.help), **SCENE_PARAMS}

    def inputs(self, ctx):
        text = ctx.params.get("scenes")
        if text:  # only the first scene's grid is read: its files, not the whole folder
            return self.scenes(ctx)[0].paths
        return self.scene_inputs(ctx)[:2]

    def run(self, ctx):
        from terrapipe.geo.vector import read_vector
        from terrapipe.geo.zonal import zone_coverage

        _roi_out, roi = self.roi(ctx)
        grid = read_ndvi(self.scenes(ctx)[0], roi)  # any scene: only the grid matters
        zones = read_vector(ctx.inputs["villages"]["villages"])
        path = ctx.artifact_path("coverage.npz")
        zone_coverage(grid, zones).save(path)
        return {"coverage": path, "zones": len(zones)}


class NdviDate(RegionTask):
    """NDVI of one date over the ROI (COG) and its coverage-weighted mean per village."""

    name = "ndvi"
    version = 2
    params = NODATA_PARAM

    def inputs(self, ctx):
        return Scene.from_item(ctx.item).paths

    def run(self, ctx):
        from terrapipe.geo.raster import write_cog
        from terrapipe.geo.timeseries import date_zone_means
        from terrapipe.geo.vector import read_vector
        from terrapipe.geo.zonal import ZoneCoverage, zone_coverage

        roi_out, roi = self.roi(ctx)
        scene = Scene.from_item(ctx.item)
        ndvi = read_ndvi(
            scene,
            roi,
            nodata=ctx.params["nodata"],
            scale=ctx.params["scale"],
            offset=ctx.params["offset"],
        )
        zones = read_vector(ctx.inputs["villages"]["villages"])
        coverage = ZoneCoverage.load(ctx.inputs["coverage"]["coverage"])
        same_grid = tuple(ndvi.shape) == tuple(coverage.shape) and ndvi.transform.almost_equals(
            coverage.transform
        )
        if not same_grid:
            ctx.log.info("scene of %s is on another grid: its own zone coverage", scene.date)
            coverage = zone_coverage(ndvi, zones)
        out = ctx.artifact_path(
            f"{artifact_name(DATASET, roi_out, ctx.task_version, 'tif')[:-4]}_{scene.date}.tif"
        )
        write_cog(ndvi, out)
        table = date_zone_means(ndvi.array, coverage, when=scene.date)
        table["village_id"] = table["zone"].map(zones[ctx.inputs["villages"]["id"]])
        means = ctx.artifact_path("zone_means.parquet")
        table.to_parquet(means, index=False)
        return {
            "date": scene.date,
            "ndvi": out,
            "zone_means": means,
            "red": scene.red,
            "nir": scene.nir,
        }


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
        villages = ctx.inputs["villages"]
        names = dict(zip(zones[villages["id"]], zones[villages["name"]], strict=False))
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
        sources = list(dict.fromkeys(p for d in per_date for p in (d["red"], d["nir"])))
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
workflow.add_node(Region((VILLAGES, SCENES)))
workflow.add_node(Dates(), "region")
workflow.add_node(VillagesInRoi(), "region")
workflow.add_node(Coverage(), ["region", "villages"])
workflow.add_node(NdviDate(), ["region", "villages", "coverage", "dates"], map_over="dates")
workflow.add_node(Series(), ["region", "villages", "ndvi"])
workflow.add_node(Publish(), "series", name="publish")
