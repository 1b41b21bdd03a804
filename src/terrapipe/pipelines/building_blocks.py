"""Generic building blocks on the user's own files, each published as a layer.

    clip-raster   (raster, roi, nodata)                -> COG
    clip-vector   (vector, roi)                        -> GeoParquet
    zonal-stats   (raster, zones, stats, band, csv,    -> table: zone attributes + one
                   nodata)                                column per statistic
    proximity     (features, targets, target_class)    -> features + dist_<class>_m columns

``roi`` is a bbox, WKT, GeoJSON or a vector file (``path#attribute=value`` picks one
feature); an admin path needs ``boundaries`` (a vector file) whose columns ``levels`` names
(default state,district,block; e.g. ``levels=continent,name`` for Natural Earth).
``nodata`` (clip-raster, zonal-stats) replaces or supplies the raster's nodata tag, e.g. 0
for Landsat Level-1 bands that carry none. Reads are bounded by the ``raster_memory_budget``
setting.
"""

from __future__ import annotations

from pathlib import Path

from terrapipe.core.context import Context
from terrapipe.core.task import Param, Task
from terrapipe.core.workflow import Workflow
from terrapipe.errors import InvalidInput
from terrapipe.geo.naming import slugify
from terrapipe.pipelines.common import (
    LEVELS_HELP,
    ROI_HELP,
    Publish,
    admin_levels,
    artifact_name,
    layer_output,
    roi_output,
)


def _roi(ctx: Context):
    from terrapipe.geo.roi import parse_roi

    boundaries = ctx.params.get("boundaries") or None
    levels = admin_levels(ctx.params.get("levels"), ctx.settings)
    return parse_roi(ctx.params["roi"], boundaries=boundaries, levels=levels)


def _need_file(path: Path, name: str) -> Path:
    if not path.exists():
        raise InvalidInput(f"parameter {name!r}: file not found: {path}")
    return path


NODATA_PARAM = Param(
    float, default=None, help="raster nodata value, replacing (or supplying) the file's tag"
)


def _budget(ctx: Context) -> int:
    """The run's raster memory budget (TERRAPIPE_RASTER_MEMORY_BUDGET), in bytes."""
    return int(ctx.settings.raster_memory_budget)


ROI_PARAMS = {
    "roi": Param(str, help=ROI_HELP),
    "boundaries": Param(str, default="", help="admin boundary file, for admin-path ROIs"),
    "levels": Param(str, default="", help=LEVELS_HELP),
}


class _ClipTask(Task):
    """Clip the file in parameter ``source_param`` to the ROI; subclasses do the clip."""

    source_param = ""
    kind = ""
    ext = ""

    def clip(self, ctx: Context, source: Path, roi, out: Path) -> dict:
        raise NotImplementedError

    def run(self, ctx: Context):
        source = _need_file(ctx.params[self.source_param], self.source_param)
        roi = _roi(ctx)
        roi_out = roi_output(roi)
        dataset = f"{slugify(source.stem, sep='-')}-clip"
        out = ctx.artifact_path(artifact_name(dataset, roi_out, ctx.task_version, self.ext))
        properties = self.clip(ctx, source, roi, out)
        return layer_output(
            ctx,
            dataset=dataset,
            kind=self.kind,
            files=[out],
            roi=roi_out,
            derived_from=[source],
            properties=properties,
        )


class ClipRasterTask(_ClipTask):
    """Clip a raster to an ROI as a Cloud Optimized GeoTIFF (windowed read)."""

    name = "clip-raster"
    version = 2  # 2: ROI cut to the raster footprint, nodata parameter
    params = {"raster": Param(Path, help="raster file"), **ROI_PARAMS, "nodata": NODATA_PARAM}
    source_param, kind, ext = "raster", "raster", "tif"

    def clip(self, ctx: Context, source: Path, roi, out: Path) -> dict:
        from terrapipe.geo.raster import clip_raster

        nodata = ctx.params["nodata"]
        clip_raster(source, roi, out, src_nodata=nodata, memory_budget=_budget(ctx))
        return {} if nodata is None else {"nodata": nodata}


class ClipVectorTask(_ClipTask):
    """Clip a vector file to an ROI as GeoParquet."""

    name = "clip-vector"
    version = 1
    params = {"vector": Param(Path, help="vector file"), **ROI_PARAMS}
    source_param, kind, ext = "vector", "vector", "parquet"

    def clip(self, ctx: Context, source: Path, roi, out: Path) -> dict:
        from terrapipe.geo.vector import clip_vector, read_vector, write_vector

        clipped = clip_vector(read_vector(source), roi, name=str(source))
        write_vector(clipped, out)
        return {"features": len(clipped)}


def _zones_roi(zones_path: Path, zones) -> dict:
    """The zones' extent as the layer's ROI (zonal tables cover their zones)."""
    from terrapipe.geo.roi import make_roi

    return roi_output(
        make_roi(zones.union_all().envelope, zones.crs, label=zones_path.stem, kind="file")
    )


class ZonalStatsTask(Task):
    """Zonal statistics of a raster band over polygons (exactextract)."""

    name = "zonal-stats"
    version = 2  # 2: point/line zones, zones cut to the raster footprint, nodata parameter
    params = {
        "raster": Param(Path, help="raster file"),
        "zones": Param(Path, help="polygons, points or lines (one row per zone in the result)"),
        "stats": Param(
            str, default="mean", help="comma separated: mean,min,max,sum,count,majority,frac"
        ),
        "band": Param(int, default=1, help="band number, from 1"),
        "csv": Param(bool, default=False, help="also write a CSV"),
        "nodata": NODATA_PARAM,
    }

    def run(self, ctx: Context):
        from terrapipe.geo.vector import read_vector, write_vector
        from terrapipe.geo.zonal import zonal_stats

        raster = _need_file(ctx.params["raster"], "raster")
        zones_path = _need_file(ctx.params["zones"], "zones")
        zones = read_vector(zones_path)
        table = zonal_stats(
            raster,
            zones,
            stats=ctx.params["stats"],
            band=ctx.params["band"],
            nodata=ctx.params["nodata"],
            memory_budget=_budget(ctx),
        )
        stat_columns = [c for c in table.columns if c not in zones.columns and c != "count"]
        if stat_columns:
            no_data = int(table[stat_columns].isna().all(axis=1).sum())
        else:
            no_data = int((table["count"].fillna(0) == 0).sum())
        if no_data:
            ctx.log.warning("%d of %d zone(s) have no data in %s", no_data, len(table), raster)
        roi_out = _zones_roi(zones_path, zones)
        dataset = f"{slugify(raster.stem, sep='-')}-zonal"
        out = ctx.artifact_path(artifact_name(dataset, roi_out, ctx.task_version, "parquet"))
        write_vector(table, out)
        files = [out]
        if ctx.params["csv"]:
            csv = out.with_suffix(".csv")
            table.drop(columns="geometry").to_csv(csv, index=False)
            files.append(csv)
        return layer_output(
            ctx,
            dataset=dataset,
            kind="table",
            files=files,
            roi=roi_out,
            derived_from=[raster, zones_path],
            properties={
                "zones": len(table),
                "stats": ctx.params["stats"],
                "zones_without_data": no_data,
                **({} if ctx.params["nodata"] is None else {"nodata": ctx.params["nodata"]}),
            },
        )


class ProximityTask(Task):
    """Distance (m) from each feature to the nearest target (of each class)."""

    name = "proximity"
    version = 1
    params = {
        "features": Param(Path, help="features to enrich"),
        "targets": Param(Path, help="targets to measure to"),
        "target_class": Param(str, default="", help="targets' column with the class"),
    }

    def run(self, ctx: Context):
        from terrapipe.geo.vector import nearest_distance, read_vector, write_vector

        features_path = _need_file(ctx.params["features"], "features")
        targets_path = _need_file(ctx.params["targets"], "targets")
        features = read_vector(features_path)
        targets = read_vector(targets_path)
        table = nearest_distance(features, targets, by=ctx.params["target_class"] or None)
        roi_out = _zones_roi(features_path, features)
        dataset = f"{slugify(features_path.stem, sep='-')}-proximity"
        out = ctx.artifact_path(artifact_name(dataset, roi_out, ctx.task_version, "parquet"))
        write_vector(table, out)
        return layer_output(
            ctx,
            dataset=dataset,
            kind="vector",
            files=[out],
            roi=roi_out,
            derived_from=[features_path, targets_path],
        )


def _single(name: str, task: Task, description: str) -> Workflow:
    wf = Workflow(name, version=1, category="building block", description=description)
    wf.add_node(task)
    wf.add_node(Publish(), task.name, name="publish")
    return wf


clip_raster_workflow = _single("clip-raster", ClipRasterTask(), "Clip a raster to an ROI")
clip_vector_workflow = _single("clip-vector", ClipVectorTask(), "Clip a vector file to an ROI")
zonal_stats_workflow = _single("zonal-stats", ZonalStatsTask(), "Zonal statistics per polygon")
proximity_workflow = _single("proximity", ProximityTask(), "Distance to the nearest target")
