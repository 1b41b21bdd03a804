"""``facilities-proximity`` — table-plus-geometry enrichment.

    region ──> villages ──> proximity ──> publish

Villages (parameter ``villages``, any polygon or point file; default the data folder's)
that intersect the ROI, each with the distance in metres to the nearest facility
(parameter ``facilities``) of every kind (column ``facility_kind``: ``dist_school_m``,
``dist_clinic_m``, ...; ``dist_nearest_m`` when the column is set to nothing), computed in
the local UTM zone; written as GeoParquet and CSV.
"""

from __future__ import annotations

from typing import Any

from terrapipe.core.task import Param
from terrapipe.core.workflow import Workflow
from terrapipe.errors import InvalidInput
from terrapipe.pipelines.common import (
    Publish,
    Region,
    RegionInput,
    RegionTask,
    artifact_name,
    layer_output,
)

DATASET = "facilities-proximity"
VILLAGES = RegionInput("villages", "villages", "village (zone) file (default: the sample's)")
FACILITIES = RegionInput("facilities", "facilities", "facility file (default: the sample's)")
ZONE_PARAMS = {
    "zone_id": Param(str, default="", help="villages' id column (default: village_id, else row)"),
    "zone_name": Param(str, default="", help="villages' name column (default: name, else id)"),
}


def _column(frame: Any, wanted: str, fallback: str, param: str, source: str) -> str | None:
    """The column named by parameter ``param``, else ``fallback`` if present, else None."""
    if wanted:
        if wanted not in frame.columns:
            raise InvalidInput(
                f"parameter {param!r}: {source} has no column {wanted!r} "
                f"(columns: {', '.join(map(str, frame.columns))})"
            )
        return wanted
    return fallback if fallback in frame.columns else None


class VillagesInRoi(RegionTask):
    """The villages that intersect the ROI (whole polygons, not cut), with their id and
    name columns (``zone_id``, ``zone_name``; a ``zone_id`` row number when there is none)."""

    name = "villages"
    version = 2
    sources = ("villages",)
    params = ZONE_PARAMS

    def run(self, ctx):
        from terrapipe.geo.vector import read_vector, write_vector

        _roi_out, roi = self.roi(ctx)
        source = self.source(ctx, "villages")
        villages = read_vector(source)
        id_col = _column(villages, ctx.params["zone_id"], "village_id", "zone_id", source.name)
        if id_col is None:
            id_col = "zone_id"
            villages[id_col] = range(1, len(villages) + 1)
        name_col = _column(villages, ctx.params["zone_name"], "name", "zone_name", source.name)
        area = roi.to_crs(villages.crs).geometry
        inside = villages[villages.intersects(area)]
        out = ctx.artifact_path("villages.parquet")
        write_vector(inside, out)
        return {
            "villages": out,
            "count": len(inside),
            "id": id_col,
            "name": name_col or id_col,
            "source": str(source),
        }


class Proximity(RegionTask):
    """Distance from each village to the nearest facility of each kind."""

    name = "proximity"
    version = 2
    sources = ("facilities",)
    params = {
        "facility_kind": Param(
            str, default="kind", help="facilities' class column ('' for one nearest distance)"
        )
    }

    def run(self, ctx):
        from terrapipe.geo.vector import nearest_distance, read_vector, write_vector

        roi_out, _roi = self.roi(ctx)
        villages = read_vector(ctx.inputs["villages"]["villages"])
        source = self.source(ctx, "facilities")
        facilities = read_vector(source)
        kind = ctx.params["facility_kind"]
        if kind and kind not in facilities.columns:
            raise InvalidInput(
                f"parameter 'facility_kind': {source.name} has no column {kind!r} "
                f"(columns: {', '.join(map(str, facilities.columns))}); "
                "name the class column, or give facility_kind= for one nearest distance"
            )
        table = nearest_distance(villages, facilities, by=kind or None)
        out = ctx.artifact_path(artifact_name(DATASET, roi_out, ctx.task_version, "parquet"))
        write_vector(table, out)
        csv = out.with_suffix(".csv")
        table.drop(columns="geometry").to_csv(csv, index=False)
        return layer_output(
            ctx,
            dataset=DATASET,
            kind="vector",
            files=[out, csv],
            roi=roi_out,
            derived_from=[ctx.inputs["villages"]["source"], source],
            properties={"villages": len(table)},
        )


workflow = Workflow(
    DATASET,
    version=1,
    category="table-plus-geometry enrichment",
    description="Villages in the ROI with the distance to each kind of facility",
)
workflow.add_node(Region((VILLAGES, FACILITIES)))
workflow.add_node(VillagesInRoi(), "region")
workflow.add_node(Proximity(), ["region", "villages"])
workflow.add_node(Publish(), "proximity", name="publish")
