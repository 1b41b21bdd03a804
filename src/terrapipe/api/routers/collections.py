"""OGC API – Features, Part 1: Core, over the published layers.

One collection per published layer (its newest version): vector layers and tables with a
geometry serve their GeoParquet as GeoJSON pages; raster layers are listed with links to
their COG files, served with HTTP Range support (GDAL's ``/vsicurl/`` reads windows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from terrapipe.api.errors import ApiError
from terrapipe.api.features import CRS84, open_geoparquet, parse_bbox, parse_datetime, read_page
from terrapipe.api.results import media_type
from terrapipe.api.routers.landing import base_url
from terrapipe.api.service import Service, get_service
from terrapipe.geo.naming import slugify
from terrapipe.publish.layers import Layer, list_layers

router = APIRouter(tags=["collections"])

GEOJSON = "application/geo+json"
MAX_LIMIT = 10_000
ITEMS_PARAMS = {"bbox", "datetime", "limit", "offset", "f"}

BBOX_DOC = (
    "Only features that have a geometry that intersects the bounding box: minx,miny,maxx,maxy "
    "in CRS84 (lon/lat); minx > maxx crosses the antimeridian."
)
DATETIME_DOC = (
    "Only features whose time intersects: an RFC 3339 date-time, or an interval "
    "`start/end` with `..` for an open end."
)


def collection_id(layer: Layer) -> str:
    return f"{slugify(layer.dataset)}_{layer.roi_slug}"


def _layers(service: Service) -> dict[str, Layer]:
    out: dict[str, Layer] = {}
    for layer in list_layers(service.db, latest=True):
        out.setdefault(collection_id(layer), layer)
    return out


def _parquet(layer: Layer):
    for f in layer.files:
        if f.endswith(".parquet") and Path(f).is_file():
            gp = open_geoparquet(Path(f))
            if gp is not None:
                return gp
    return None


def _rasters(layer: Layer) -> list[Path]:
    return [Path(f) for f in layer.files if f.lower().endswith((".tif", ".tiff"))]


def _describe(cid: str, layer: Layer, base: str) -> dict[str, Any] | None:
    url = f"{base}/collections/{cid}"
    links = [{"href": url, "rel": "self", "type": "application/json", "title": layer.name}]
    extent: dict[str, Any] = {}
    item_type = None
    gp = _parquet(layer) if layer.kind in ("vector", "table") else None
    if gp is not None:
        item_type = "feature"
        links.append({"href": f"{url}/items", "rel": "items", "type": GEOJSON, "title": "items"})
        if gp.bbox84 is not None:
            extent["spatial"] = {"bbox": [list(gp.bbox84)], "crs": CRS84}
    elif layer.kind == "raster" and _rasters(layer):
        item_type = "coverage"
        for path in _rasters(layer):
            links.append(
                {
                    "href": f"{url}/files/{path.name}",
                    "rel": "enclosure",
                    "type": media_type(path),
                    "title": path.name,
                }
            )
        bbox = _raster_bbox84(_rasters(layer)[0])
        if bbox is not None:
            extent["spatial"] = {"bbox": [list(bbox)], "crs": CRS84}
    else:
        return None
    times = [t for t in (layer.created_at, layer.updated_at) if t is not None]
    if layer.properties.get("time_range"):
        extent["temporal"] = {"interval": [list(layer.properties["time_range"])]}
    elif times:
        extent["temporal"] = {"interval": [[min(times).isoformat(), max(times).isoformat()]]}
    return {
        "id": cid,
        "title": layer.name,
        "description": f"{layer.dataset} for {layer.roi_slug}, layer version "
        f"{layer.layer_version} (algorithm {layer.algorithm_version}, {layer.workflow})",
        "itemType": item_type,
        "crs": [CRS84],
        "extent": extent,
        "links": links,
    }


def _raster_bbox84(path: Path):
    import rasterio
    from rasterio.warp import transform_bounds

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                return None
            return tuple(transform_bounds(src.crs, "OGC:CRS84", *src.bounds, densify_pts=21))
    except rasterio.errors.RasterioError:
        return None


def _layer_or_404(service: Service, cid: str) -> Layer:
    layer = _layers(service).get(cid)
    if layer is None:
        raise ApiError(
            404, "not-found", f"no collection {cid!r} (see /collections)", title="not found"
        )
    return layer


@router.get("/collections", operation_id="getCollections", summary="The published layers")
def collections(request: Request, service: Service = Depends(get_service)) -> dict:
    base = base_url(request)
    described = [_describe(cid, layer, base) for cid, layer in sorted(_layers(service).items())]
    return {
        "collections": [d for d in described if d is not None],
        "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
    }


@router.get("/collections/{collectionId}", operation_id="describeCollection", summary="One layer")
def collection(
    collectionId: str,  # noqa: N803
    request: Request,
    service: Service = Depends(get_service),
) -> dict:
    layer = _layer_or_404(service, collectionId)
    described = _describe(collectionId, layer, base_url(request))
    if described is None:
        raise ApiError(404, "not-found", f"collection {collectionId!r} has no servable file")
    return described


@router.get(
    "/collections/{collectionId}/items",
    operation_id="getFeatures",
    summary="Features of a layer, as GeoJSON",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}}},
)
def items(
    collectionId: str,  # noqa: N803
    request: Request,
    bbox: str | None = Query(default=None, description=BBOX_DOC),
    datetime: str | None = Query(default=None, description=DATETIME_DOC),
    limit: int = Query(default=10, ge=1, le=MAX_LIMIT),
    offset: int = Query(default=0, ge=0),
    service: Service = Depends(get_service),
) -> JSONResponse:
    unknown = sorted(set(request.query_params) - ITEMS_PARAMS)
    if unknown:
        raise ApiError(
            400,
            "invalid-parameter",
            f"unknown query parameter {unknown[0]!r}; this collection takes "
            + ", ".join(sorted(ITEMS_PARAMS - {"f"})),
            title="invalid parameter",
        )
    layer = _layer_or_404(service, collectionId)
    gp = _parquet(layer)
    if gp is None:
        raise ApiError(404, "not-found", f"collection {collectionId!r} has no features")
    try:
        box = parse_bbox(bbox) if bbox else None
        start, end = parse_datetime(datetime) if datetime else (None, None)
    except ValueError as exc:
        raise ApiError(400, "invalid-parameter", str(exc), title="invalid parameter") from None
    page = read_page(gp, bbox=box, start=start, end=end, offset=offset, limit=limit)
    base = base_url(request)
    url = f"{base}/collections/{collectionId}/items"
    extra = "".join(
        f"&{k}={v}" for k, v in (("bbox", bbox), ("datetime", datetime)) if v is not None
    )
    links = [
        {"href": f"{url}?limit={limit}&offset={offset}{extra}", "rel": "self", "type": GEOJSON},
        {
            "href": f"{base}/collections/{collectionId}",
            "rel": "collection",
            "type": "application/json",
        },
    ]
    if offset + len(page.features) < page.matched:
        links.append(
            {
                "href": f"{url}?limit={limit}&offset={offset + limit}{extra}",
                "rel": "next",
                "type": GEOJSON,
            }
        )
    if offset > 0:
        links.append(
            {
                "href": f"{url}?limit={limit}&offset={max(0, offset - limit)}{extra}",
                "rel": "prev",
                "type": GEOJSON,
            }
        )
    from datetime import UTC
    from datetime import datetime as _dt

    body = {
        "type": "FeatureCollection",
        "features": page.features,
        "numberMatched": page.matched,
        "numberReturned": len(page.features),
        "timeStamp": _dt.now(UTC).isoformat().replace("+00:00", "Z"),
        "links": links,
    }
    return JSONResponse(body, media_type=GEOJSON)


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    operation_id="getFeature",
    summary="One feature",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}}},
)
def feature(
    collectionId: str,  # noqa: N803
    featureId: str,  # noqa: N803
    request: Request,
    service: Service = Depends(get_service),
) -> JSONResponse:
    from terrapipe.api.features import read_feature

    layer = _layer_or_404(service, collectionId)
    gp = _parquet(layer)
    found = read_feature(gp, int(featureId)) if gp is not None and featureId.isdigit() else None
    if found is None:
        raise ApiError(
            404, "not-found", f"collection {collectionId!r} has no feature {featureId!r}"
        )
    base = base_url(request)
    found["links"] = [
        {
            "href": f"{base}/collections/{collectionId}/items/{featureId}",
            "rel": "self",
            "type": GEOJSON,
        },
        {
            "href": f"{base}/collections/{collectionId}",
            "rel": "collection",
            "type": "application/json",
        },
    ]
    return JSONResponse(found, media_type=GEOJSON)


@router.get(
    "/collections/{collectionId}/files/{name}",
    operation_id="getLayerFile",
    summary="A file of a layer (a COG for a raster; HTTP Range supported)",
    response_class=FileResponse,
)
def layer_file(
    collectionId: str,  # noqa: N803
    name: str,
    service: Service = Depends(get_service),
) -> FileResponse:
    layer = _layer_or_404(service, collectionId)
    for f in layer.files:
        path = Path(f)
        if path.name == name and path.is_file():
            return FileResponse(path, media_type=media_type(path))
    raise ApiError(404, "not-found", f"collection {collectionId!r} has no file {name!r}")


# OGC API – Features Part 1, the parameters as the standard's OpenAPI fragments define them.
STANDARD_PARAMETERS = {
    "bbox": {
        "name": "bbox",
        "in": "query",
        "required": False,
        "description": BBOX_DOC,
        "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
        "style": "form",
        "explode": False,
    },
    "datetime": {
        "name": "datetime",
        "in": "query",
        "required": False,
        "description": DATETIME_DOC,
        "schema": {"type": "string"},
        "style": "form",
        "explode": False,
    },
    "limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "The most features in the response (1 to 10000).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
        "style": "form",
        "explode": False,
    },
}


def standard_parameters(openapi: dict) -> dict:
    """Put the standard's definitions of bbox, datetime and limit in the document."""
    operation = openapi.get("paths", {}).get("/collections/{collectionId}/items", {}).get("get")
    if operation:
        operation["parameters"] = [
            STANDARD_PARAMETERS.get(p.get("name"), p) for p in operation.get("parameters", [])
        ]
    return openapi
