"""``stream-order`` — mixed raster and vector outputs.

    region ──> clip-dem ──> streams ──> order-by-zone ──> publish
          └──> villages ───────────────┘

The DEM clipped to the ROI; D8 flow directions, flow accumulation and the stream network
above ``threshold`` cells (pyflwdir); Strahler order as a COG and as stream lines with an
``order`` attribute; and, per village, the percentage of its area in each stream order.
Inputs: ``dem`` (any GDAL raster in a projected CRS) and ``villages`` (any polygon file);
the data folder's when not given.
"""

from __future__ import annotations

from terrapipe.core.task import Param
from terrapipe.core.workflow import Workflow
from terrapipe.pipelines.common import (
    Publish,
    Region,
    RegionInput,
    RegionTask,
    artifact_name,
    layer_output,
)
from terrapipe.pipelines.facilities_proximity import VILLAGES, VillagesInRoi

DATASET = "stream-order"
DEM = RegionInput("dem", "dem", "DEM raster (default: the sample's)")


class ClipDem(RegionTask):
    """Clip the DEM to the ROI (windowed read, COG)."""

    name = "clip-dem"
    version = 1
    sources = ("dem",)

    def run(self, ctx):
        from terrapipe.geo.raster import clip_raster

        _roi_out, roi = self.roi(ctx)
        source = self.source(ctx, "dem")
        out = ctx.artifact_path("dem.tif")
        clip_raster(source, roi, out)
        return {"dem": out, "source": str(source)}


class Streams(RegionTask):
    """Flow directions, accumulation, stream network and Strahler order."""

    name = "streams"
    version = 1
    params = {"threshold": Param(int, default=100, help="stream when >= this many cells drain")}

    def run(self, ctx):
        from terrapipe.geo.hydrology import (
            ORDER_NODATA,
            flow_accumulation,
            flow_directions,
            strahler_order,
            stream_lines,
            stream_mask,
        )
        from terrapipe.geo.raster import RasterArray, read_raster, write_cog
        from terrapipe.geo.vector import write_vector

        roi_out = ctx.inputs["region"]["roi"]
        dem = read_raster(ctx.inputs["clip-dem"]["dem"])
        flw = flow_directions(dem.array, transform=dem.transform, nodata=dem.nodata)
        acc = flow_accumulation(flw)
        order = strahler_order(flw, stream_mask(acc, threshold=ctx.params["threshold"]))
        raster = ctx.artifact_path(artifact_name(DATASET, roi_out, ctx.task_version, "tif"))
        write_cog(RasterArray(order, dem.transform, dem.crs, ORDER_NODATA), raster)
        lines = stream_lines(flw, order, crs=dem.crs, accumulation=acc)
        vector = ctx.artifact_path(
            artifact_name("stream-lines", roi_out, ctx.task_version, "parquet")
        )
        write_vector(lines, vector)
        source = ctx.inputs["clip-dem"]["source"]
        top = int(order[order != ORDER_NODATA].max()) if (order != ORDER_NODATA).any() else 0
        return {
            "raster": layer_output(
                ctx,
                dataset=DATASET,
                kind="raster",
                files=[raster],
                roi=roi_out,
                derived_from=[source],
                properties={"max_order": top},
            ),
            "lines": layer_output(
                ctx,
                dataset="stream-lines",
                kind="vector",
                files=[vector],
                roi=roi_out,
                derived_from=[source],
                properties={"segments": len(lines)},
            ),
        }


class OrderByZone(RegionTask):
    """Per village: percentage of its area covered by each stream order."""

    name = "order-by-zone"
    version = 1

    def run(self, ctx):
        from terrapipe.geo.hydrology import (
            order_area_by_zone,
        )
        from terrapipe.geo.raster import RasterArray, read_raster
        from terrapipe.geo.vector import read_vector, write_vector

        roi_out = ctx.inputs["region"]["roi"]
        order = read_raster(ctx.inputs["streams"]["raster"]["layer"]["files"][0])
        # uint8 raster: exactextract wants the nodata in the array's own type
        order = RasterArray(order.array, order.transform, order.crs, int(order.nodata))
        zones = read_vector(ctx.inputs["villages"]["villages"])
        table = order_area_by_zone(order, zones)
        out = ctx.artifact_path(
            artifact_name("stream-order-by-village", roi_out, ctx.task_version, "parquet")
        )
        write_vector(table, out)
        csv = out.with_suffix(".csv")
        table.drop(columns="geometry").to_csv(csv, index=False)
        return layer_output(
            ctx,
            dataset="stream-order-by-village",
            kind="table",
            files=[out, csv],
            roi=roi_out,
            derived_from=[ctx.inputs["streams"]["raster"]["layer"]["files"][0]],
        )


workflow = Workflow(
    DATASET,
    version=1,
    category="mixed raster and vector",
    description="Stream order raster, stream lines and order area per village",
)
workflow.add_node(Region((DEM, VILLAGES)))
workflow.add_node(ClipDem(), "region")
workflow.add_node(Streams(), ["region", "clip-dem"])
workflow.add_node(VillagesInRoi(), "region")
workflow.add_node(OrderByZone(), ["region", "streams", "villages"])
workflow.add_node(Publish(), ["streams", "order-by-zone"], name="publish")
