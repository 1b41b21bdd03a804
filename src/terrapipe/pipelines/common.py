"""What the built-in region workflows share: the region node, layer outputs, publication.

Every region workflow starts with ``region`` (parameters ``roi`` and ``data``): it finds
the data folder (default: the bundled sample region, generated on first use under
``$TERRAPIPE_HOME/sample``), parses the ROI against its admin boundaries and checks that it
overlaps the data. Producing tasks return *layer outputs*; the final ``publish`` node turns
each into a layer record, a quicklook and a STAC item.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from terrapipe.core.context import Context
from terrapipe.core.task import Param, Task
from terrapipe.errors import InvalidInput
from terrapipe.geo.naming import layer_name

if TYPE_CHECKING:  # geo and sample modules import GDAL, numba & co: only when tasks run
    from terrapipe.geo.roi import ROI
    from terrapipe.sample.generate import SampleManifest
    from terrapipe.settings import Settings

ROI_HELP = "admin path state/district/block, bbox minx,miny,maxx,maxy, WKT, GeoJSON or a file"
DATA_HELP = "folder made by `terrapipe sample-data` (default: the bundled sample region)"


def data_folder(data: str | None, settings: Settings) -> SampleManifest:
    """The sample-data folder a run reads: the given one, or the bundled region (under the
    run's home)."""
    from terrapipe.sample.generate import generate_sample_region, load_manifest

    if not data:
        return generate_sample_region(settings.home_dir / "sample")
    manifest = load_manifest(data)
    if manifest is None:
        raise InvalidInput(
            f"data folder {data!r} is not a complete sample-data folder (no valid "
            "manifest.json); create one with `terrapipe sample-data DIR`"
        )
    return manifest


def roi_output(roi: ROI) -> dict[str, Any]:
    """An ROI as JSON-able task output (it crosses the run store between nodes)."""
    return {
        "label": roi.label,
        "slug": roi.slug,
        "kind": roi.kind,
        "crs": roi.crs.to_wkt(),
        "wkt": roi.geometry.wkt,
        "repaired": roi.repaired,
        "notes": list(roi.notes),
    }


def roi_from_output(out: dict[str, Any]) -> ROI:
    import shapely

    from terrapipe.geo.roi import make_roi

    return make_roi(
        shapely.from_wkt(out["wkt"]),
        out["crs"],
        label=out["label"],
        kind=out["kind"],
        notes=out.get("notes", ()),
    )


def layer_output(
    ctx: Context,
    *,
    dataset: str,
    kind: str,
    files: list[Path],
    roi: dict[str, Any],
    derived_from: list[str | Path] = (),  # type: ignore[assignment]
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a producing task returns for each layer it made (the publish node reads it)."""
    return {
        "layer": {
            "dataset": dataset,
            "kind": kind,
            "files": [Path(f) for f in files],
            "algorithm_version": ctx.task_version,
            "roi": roi,
            "derived_from": [str(p) for p in derived_from],
            "properties": properties or {},
        }
    }


def artifact_name(dataset: str, roi: dict[str, Any], version: str, ext: str) -> str:
    """File name of a layer's artifact, from the one naming helper."""
    return f"{layer_name(dataset, roi['slug'], version=int(version))}.{ext}"


class Region(Task):
    """Resolve the ROI (admin path, bbox, WKT, GeoJSON, file) against the data folder."""

    name = "region"
    version = 1
    params = {
        "roi": Param(str, help=ROI_HELP),
        "data": Param(str, default="", help=DATA_HELP),
    }

    def inputs(self, ctx: Context) -> list[Path]:
        manifest = data_folder(ctx.params["data"], ctx.settings)
        return [manifest.directory / "manifest.json"]

    def run(self, ctx: Context) -> dict[str, Any]:
        from terrapipe.geo.roi import check_overlap, parse_roi

        manifest = data_folder(ctx.params["data"], ctx.settings)
        boundaries = manifest.path("admin_boundaries")
        roi = parse_roi(ctx.params["roi"], boundaries=boundaries)
        import geopandas as gpd

        admin = gpd.read_parquet(boundaries)
        check_overlap(roi, admin.total_bounds, admin.crs, name="the region's admin boundaries")
        for note in roi.notes:
            ctx.log.warning("ROI %s: %s", roi.label, note)
        return {"roi": roi_output(roi), "data": str(manifest.directory)}


class Publish(Task):
    """Publish every layer the upstream nodes made: layer record, quicklook, STAC item."""

    name = "publish"
    version = 1

    def needed(self, ctx: Context) -> bool:
        if not ctx.cache_hit:
            return True
        from terrapipe.publish.layers import get_layer

        # a deleted layer record is published again
        return any(
            get_layer(ctx.db, name) is None for name in (ctx.cached_outputs or {}).get("layers", [])
        )

    def run(self, ctx: Context) -> dict[str, Any]:
        from terrapipe.pipelines.quicklook import quicklook
        from terrapipe.publish.layers import publish_layer, set_stac_item
        from terrapipe.publish.stac import write_item

        settings, db = ctx.settings, ctx.db  # the run's store, never the default one
        layers = [spec for spec in _layer_specs(ctx.inputs)]
        names, items = [], []
        for spec in layers:
            roi = roi_from_output(spec["roi"])
            files = [Path(f) for f in spec["files"]]
            preview = ctx.artifact_path(
                artifact_name(spec["dataset"], spec["roi"], spec["algorithm_version"], "png")
            )
            quicklook(files[0], preview, title=f"{spec['dataset']} · {roi.label}")
            layer = publish_layer(
                db,
                dataset=spec["dataset"],
                roi=roi.slug,
                kind=spec["kind"],
                algorithm_version=spec["algorithm_version"],
                files=[*files, ctx.stored_path(preview)],
                workflow=ctx.workflow_name,
                roi_info=roi.to_dict(),
                properties=spec["properties"],
                run_id=ctx.run_id,
            )
            info = roi.to_dict()
            href = write_item(
                settings.stac_dir,
                layer,
                geometry=info["geometry_4326"],
                bbox=info["bbox_4326"],
                derived_from=spec["derived_from"],
                lineage=f"{layer.workflow}: {spec['dataset']} algorithm v"
                f"{spec['algorithm_version']} for {roi.label}",
            )
            set_stac_item(db, layer.name, str(href))
            names.append(layer.name)
            items.append(href)
        return {"layers": names, "stac_items": items}


def _layer_specs(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "layer" in value and isinstance(value["layer"], dict):
                found.append(value["layer"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(inputs)
    return found


class RegionTask(Task):
    """A task that reads files of the region's data folder (listed in ``sources``).

    Those files' fingerprints enter the cache key, so editing one reruns the task.
    """

    sources: tuple[str, ...] = ()

    def region(self, ctx: Context) -> tuple[dict[str, Any], ROI, SampleManifest]:
        from terrapipe.sample.generate import load_manifest

        region = ctx.inputs["region"]
        manifest = load_manifest(region["data"])
        if manifest is None:
            raise InvalidInput(f"data folder {region['data']} changed or disappeared; rerun")
        return region["roi"], roi_from_output(region["roi"]), manifest

    def inputs(self, ctx: Context) -> list[Path]:
        from terrapipe.sample.generate import load_manifest

        region = ctx.inputs.get("region")
        manifest = load_manifest(region["data"]) if region else None
        return [manifest.path(key) for key in self.sources] if manifest else []
