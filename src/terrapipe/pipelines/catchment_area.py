"""``catchment-area`` — raster clip and publish.

    region ──> clip-catchment ──> publish

The flow-accumulation (catchment area, in cells) raster clipped to the ROI with a
windowed read, written as a Cloud Optimized GeoTIFF and published as a raster layer.
"""

from __future__ import annotations

from terrapipe.core.workflow import Workflow
from terrapipe.pipelines.common import Publish, Region, RegionTask, artifact_name, layer_output

DATASET = "catchment-area"


class ClipCatchment(RegionTask):
    """Clip the flow-accumulation raster to the ROI as a COG."""

    name = "clip-catchment"
    version = 1
    sources = ("flow_accumulation",)

    def run(self, ctx):
        from terrapipe.geo.raster import clip_raster

        roi_out, roi, manifest = self.region(ctx)
        source = manifest.path("flow_accumulation")
        out = ctx.artifact_path(artifact_name(DATASET, roi_out, ctx.task_version, "tif"))
        clip_raster(source, roi, out)
        return layer_output(
            ctx, dataset=DATASET, kind="raster", files=[out], roi=roi_out, derived_from=[source]
        )


workflow = Workflow(
    DATASET,
    version=1,
    category="raster clip and publish",
    description="Catchment (flow accumulation) raster clipped to the ROI",
)
workflow.add_node(Region())
workflow.add_node(ClipCatchment(), "region")
workflow.add_node(Publish(), "clip-catchment")
