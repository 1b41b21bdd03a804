"""``drainage-lines`` — vector clip and publish.

    region ──> clip-drainage-lines ──> publish

The region's drainage lines (with their Strahler ``order``) clipped to the ROI, written
as GeoParquet and published as a vector layer.
"""

from __future__ import annotations

from terrapipe.core.task import Param
from terrapipe.core.workflow import Workflow
from terrapipe.pipelines.common import Publish, Region, RegionTask, artifact_name, layer_output

DATASET = "drainage-lines"


class ClipDrainageLines(RegionTask):
    """Clip the drainage lines to the ROI."""

    name = "clip-drainage-lines"
    version = 1
    sources = ("drainage_lines",)
    params = {"min_order": Param(int, default=1, help="keep streams of at least this order")}

    def run(self, ctx):
        from terrapipe.geo.vector import clip_vector, read_vector, write_vector

        roi_out, roi, manifest = self.region(ctx)
        source = manifest.path("drainage_lines")
        lines = read_vector(source)
        lines = lines[lines["order"] >= ctx.params["min_order"]]
        clipped = clip_vector(lines, roi, name=str(source))
        out = ctx.artifact_path(artifact_name(DATASET, roi_out, ctx.task_version, "parquet"))
        write_vector(clipped, out)
        return layer_output(
            ctx,
            dataset=DATASET,
            kind="vector",
            files=[out],
            roi=roi_out,
            derived_from=[source],
            properties={"features": len(clipped), "length_m": float(clipped.length.sum())},
        )


workflow = Workflow(
    DATASET,
    version=1,
    category="vector clip and publish",
    description="Drainage lines clipped to the ROI",
)
workflow.add_node(Region())
workflow.add_node(ClipDrainageLines(), "region")
workflow.add_node(Publish(), "clip-drainage-lines")
