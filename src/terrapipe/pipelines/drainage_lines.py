"""``drainage-lines`` — vector clip and publish.

    region ──> clip-drainage-lines ──> publish

The drainage lines (parameter ``lines``, any vector file; default the data folder's, with
their Strahler ``order``) clipped to the ROI, written as GeoParquet and published as a
vector layer. ``min_order`` keeps streams of at least that order (needs an ``order``
column).
"""

from __future__ import annotations

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

DATASET = "drainage-lines"
INPUTS = (RegionInput("lines", "drainage_lines", "drainage line file (default: the sample's)"),)


class ClipDrainageLines(RegionTask):
    """Clip the drainage lines to the ROI."""

    name = "clip-drainage-lines"
    version = 1
    sources = ("lines",)
    params = {"min_order": Param(int, default=1, help="keep streams of at least this order")}

    def run(self, ctx):
        from terrapipe.geo.vector import clip_vector, read_vector, write_vector

        roi_out, roi = self.roi(ctx)
        source = self.source(ctx, "lines")
        lines = read_vector(source)
        if "order" in lines.columns:
            lines = lines[lines["order"] >= ctx.params["min_order"]]
        elif ctx.params["min_order"] > 1:
            raise InvalidInput(
                f"parameter 'min_order': {source.name} has no 'order' column "
                f"(columns: {', '.join(map(str, lines.columns))}); leave min_order at 1"
            )
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
workflow.add_node(Region(INPUTS))
workflow.add_node(ClipDrainageLines(), "region")
workflow.add_node(Publish(), "clip-drainage-lines", name="publish")
