"""``catchment-area`` — raster clip and publish.

    region ──> clip-catchment ──> publish

The flow-accumulation (catchment area, in cells) raster clipped to the ROI with a
windowed read, written as a Cloud Optimized GeoTIFF and published as a raster layer.
The raster is parameter ``accumulation`` (any GDAL raster, e.g. MERIT Hydro ``upa``);
without it, the data folder's ``flow_accumulation.tif``.
"""

from __future__ import annotations

from terrapipe.core.workflow import Workflow
from terrapipe.pipelines.common import (
    Publish,
    Region,
    RegionInput,
    RegionTask,
    artifact_name,
    layer_output,
)

DATASET = "catchment-area"
INPUTS = (
    RegionInput(
        "accumulation", "flow_accumulation", "flow accumulation raster (default: the sample's)"
    ),
)


class ClipCatchment(RegionTask):
    """Clip the flow-accumulation raster to the ROI as a COG."""

    name = "clip-catchment"
    version = 1
    sources = ("accumulation",)

    def run(self, ctx):
        from terrapipe.geo.raster import clip_raster

        roi_out, roi = self.roi(ctx)
        source = self.source(ctx, "accumulation")
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
workflow.add_node(Region(INPUTS))
workflow.add_node(ClipCatchment(), "region")
workflow.add_node(Publish(), "clip-catchment", name="publish")
