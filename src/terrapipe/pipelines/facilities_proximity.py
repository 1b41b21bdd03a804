"""``facilities-proximity`` — table-plus-geometry enrichment.

    region ──> villages ──> proximity ──> publish

Villages that intersect the ROI, each with the distance in metres to the nearest facility
of every kind (``dist_school_m``, ``dist_clinic_m``, ...), computed in the local UTM zone;
written as GeoParquet and CSV.
"""

from __future__ import annotations

from terrapipe.core.workflow import Workflow
from terrapipe.pipelines.common import Publish, Region, RegionTask, artifact_name, layer_output

DATASET = "facilities-proximity"


class VillagesInRoi(RegionTask):
    """The villages that intersect the ROI (whole polygons, not cut)."""

    name = "villages"
    version = 1
    sources = ("villages",)

    def run(self, ctx):
        from terrapipe.geo.vector import read_vector, write_vector

        roi_out, roi, manifest = self.region(ctx)
        villages = read_vector(manifest.path("villages"))
        area = roi.to_crs(villages.crs).geometry
        inside = villages[villages.intersects(area)]
        out = ctx.artifact_path("villages.parquet")
        write_vector(inside, out)
        return {"villages": out, "count": len(inside)}


class Proximity(RegionTask):
    """Distance from each village to the nearest facility of each kind."""

    name = "proximity"
    version = 1
    sources = ("facilities",)

    def run(self, ctx):
        from terrapipe.geo.vector import nearest_distance, read_vector, write_vector

        roi_out, _roi, manifest = self.region(ctx)
        villages = read_vector(ctx.inputs["villages"]["villages"])
        facilities = read_vector(manifest.path("facilities"))
        table = nearest_distance(villages, facilities, by="kind")
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
            derived_from=[manifest.path("villages"), manifest.path("facilities")],
            properties={"villages": len(table)},
        )


workflow = Workflow(
    DATASET,
    version=1,
    category="table-plus-geometry enrichment",
    description="Villages in the ROI with the distance to each kind of facility",
)
workflow.add_node(Region())
workflow.add_node(VillagesInRoi(), "region")
workflow.add_node(Proximity(), ["region", "villages"])
workflow.add_node(Publish(), "proximity")
