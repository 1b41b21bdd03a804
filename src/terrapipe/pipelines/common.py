"""What the built-in region workflows share: the region node, layer outputs, publication.

Every region workflow starts with ``region``: it resolves the workflow's input files (each
one a parameter, e.g. ``accumulation=FILE``; an input not given comes from the data folder
``data``, by default the bundled sample region, generated on first use under
``$TERRAPIPE_HOME/sample``, and only when some input needs it), parses the ROI (an admin
path is matched in ``boundaries`` by the ``levels`` columns) and checks that any other
ROI overlaps the data folder's boundaries when it uses them. Producing tasks
read the resolved files (their fingerprints enter the cache keys) and return *layer
outputs*; the final ``publish`` node turns each into a layer record, a quicklook and a STAC
item.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
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

ROI_HELP = (
    "admin path (e.g. state/district/block, see levels), bbox minx,miny,maxx,maxy, WKT, "
    "GeoJSON or a file"
)
DATA_HELP = (
    "folder made by `terrapipe sample-data`, for the inputs not given as parameters "
    "(default: the bundled sample region)"
)
BOUNDARIES_HELP = "admin boundary file for admin-path ROIs (default: the data folder's)"
LEVELS_HELP = (
    "boundary columns of the admin path, top first, e.g. continent,name "
    "(default: TERRAPIPE_ADMIN_LEVELS, else state,district,block)"
)


def admin_levels(text: str | None, settings: Settings) -> tuple[str, ...] | None:
    """The admin level columns: the ``levels`` parameter, else the run's
    ``TERRAPIPE_ADMIN_LEVELS``, else None (the geo default, state/district/block)."""
    from terrapipe.geo.roi import parse_levels

    chosen = text or settings.admin_levels
    return parse_levels(chosen) if chosen else None


def data_folder(data: str | None, settings: Settings) -> SampleManifest:
    """The sample-data folder a run reads: the given one, or the bundled region under the
    run's home (generated on first use: call this from ``run``, never from a hook that only
    lists files)."""
    from terrapipe.sample.generate import generate_sample_region, load_manifest

    if not data:
        return generate_sample_region(settings.home_dir / "sample")
    manifest = load_manifest(data)
    if manifest is None:
        raise InvalidInput(
            f"data folder {data!r} is not a complete sample-data folder (no valid "
            "manifest.json); create one with `terrapipe sample-data DIR`, or give every "
            "input as a parameter (see `terrapipe workflows show NAME`)"
        )
    return manifest


def existing_file(value: Path | str, name: str) -> Path:
    """The absolute path of an input file given as parameter ``name`` (a file, or a
    folder-shaped format such as a FileGDB ``.gdb``); InvalidInput otherwise."""
    path = Path(value).expanduser()
    if not path.exists():
        raise InvalidInput(f"parameter {name!r}: file not found: {path}")
    if path.is_dir() and path.suffix.lower() != ".gdb":
        raise InvalidInput(f"parameter {name!r}: {path} is a folder; give a file")
    return path.resolve()


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


@dataclass(frozen=True)
class RegionInput:
    """An input file of a region workflow: parameter ``param``; when not given, the data
    folder's file ``sample_key`` (``None``: the input is not a single file, e.g. scenes,
    and the task reading it finds the default itself in the data folder)."""

    param: str
    sample_key: str | None
    help: str
    is_file: bool = True


class Region(Task):
    """Resolve the workflow's input files and the ROI (admin path, bbox, WKT, GeoJSON, file).

    Inputs given as parameters are used as they are; the others come from the data folder
    (the sample region by default), which is only generated when some input needs it.
    """

    name = "region"
    version = 2

    def __init__(self, inputs: Sequence[RegionInput] = ()) -> None:
        self.region_inputs = tuple(inputs)
        self.params = {
            "roi": Param(str, help=ROI_HELP),
            "data": Param(str, default="", help=DATA_HELP),
            "boundaries": Param(Path, default=None, help=BOUNDARIES_HELP),
            "levels": Param(str, default="", help=LEVELS_HELP),
            **{
                i.param: Param(
                    Path if i.is_file else str, default=None if i.is_file else "", help=i.help
                )
                for i in self.region_inputs
            },
        }

    def _needs_data(self, ctx: Context) -> bool:
        from terrapipe.geo.roi import roi_kind

        if any(not ctx.params.get(i.param) for i in self.region_inputs):
            return True
        return not ctx.params.get("boundaries") and roi_kind(ctx.params["roi"] or "") == "admin"

    def inputs(self, ctx: Context) -> list[Path]:
        # list files only: generating the sample region belongs in run()
        data = ctx.params.get("data")
        return [Path(data).expanduser() / "manifest.json"] if data else []

    def needed(self, ctx: Context) -> bool:
        if not ctx.cache_hit:
            return True
        files = (ctx.cached_outputs or {}).get("files", {})
        return any(not Path(f).exists() for f in files.values())  # the sample was removed

    def run(self, ctx: Context) -> dict[str, Any]:
        from terrapipe.geo.roi import check_overlap, parse_roi, roi_kind
        from terrapipe.geo.vector import read_vector

        manifest = data_folder(ctx.params["data"], ctx.settings) if self._needs_data(ctx) else None
        files: dict[str, str] = {}
        for spec in self.region_inputs:
            value = ctx.params.get(spec.param)
            if value:
                if spec.is_file:
                    files[spec.param] = str(existing_file(value, spec.param))
            elif manifest is not None and spec.sample_key is not None:
                files[spec.param] = str(manifest.path(spec.sample_key))
        text = ctx.params["roi"]
        if ctx.params.get("boundaries"):
            boundaries = existing_file(ctx.params["boundaries"], "boundaries")
            levels = admin_levels(ctx.params.get("levels"), ctx.settings)
            if roi_kind(text or "") != "admin":
                boundaries = None  # not needed: the inputs check their own overlap
        elif manifest is not None:  # its own levels: TERRAPIPE_ADMIN_LEVELS is for yours
            from terrapipe.geo.roi import parse_levels

            boundaries = manifest.path("admin_boundaries")
            given = ctx.params.get("levels")
            levels = parse_levels(given or manifest.data.get("admin_levels") or None)
        else:
            boundaries, levels = None, None
        admin = read_vector(boundaries) if boundaries is not None else None
        roi = parse_roi(text, boundaries=admin, levels=levels or None)
        if admin is not None and roi.kind != "admin":
            check_overlap(roi, admin.total_bounds, admin.crs, name="the region's admin boundaries")
        for note in roi.notes:
            ctx.log.warning("ROI %s: %s", roi.label, note)
        return {
            "roi": roi_output(roi),
            "data": str(manifest.directory) if manifest is not None else "",
            "files": files,
        }


class Publish(Task):
    """Publish every layer the upstream nodes made: layer record, quicklook, STAC item."""

    name = "publish-layer"  # not the dataset chain's publish-dataset
    version = 1

    def needed(self, ctx: Context) -> bool:
        if not ctx.cache_hit:
            return True
        from terrapipe.publish.layers import get_layer

        # a deleted layer record is published again (looked up in the run's store)
        with nullcontext(ctx.db) as db:
            return any(
                get_layer(db, name) is None for name in (ctx.cached_outputs or {}).get("layers", [])
            )

    def run(self, ctx: Context) -> dict[str, Any]:
        from terrapipe.pipelines.quicklook import quicklook
        from terrapipe.publish.layers import publish_layer, set_stac_item
        from terrapipe.publish.stac import write_item

        settings = ctx.settings
        layers = [spec for spec in _layer_specs(ctx.inputs)]
        names, items = [], []
        with nullcontext(ctx.db) as db:  # the run's store, never the default database
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
    """A task that reads the region's input files (the ``Region`` inputs named in
    ``sources``); their fingerprints enter the cache key, so editing one reruns the task."""

    sources: tuple[str, ...] = ()

    def roi(self, ctx: Context) -> tuple[dict[str, Any], ROI]:
        """The ROI as the region node returned it, and as an ROI object."""
        roi_out = ctx.inputs["region"]["roi"]
        return roi_out, roi_from_output(roi_out)

    def source(self, ctx: Context, name: str) -> Path:
        """The resolved path of input ``name`` (a parameter, or the data folder's file)."""
        path = Path(ctx.inputs["region"]["files"][name])
        if not path.exists():
            raise InvalidInput(f"input {name!r} changed or disappeared: {path}; rerun")
        return path

    def manifest(self, ctx: Context) -> SampleManifest | None:
        """The data folder the region node used (None when every input was given)."""
        from terrapipe.sample.generate import load_manifest

        data = ctx.inputs["region"].get("data")
        return load_manifest(data) if data else None

    def inputs(self, ctx: Context) -> list[Path]:
        files = (ctx.inputs.get("region") or {}).get("files", {})
        return [Path(files[s]) for s in self.sources if s in files]
