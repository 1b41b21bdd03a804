"""Footprint geometry: parse search geometries, split at the antimeridian, compute bboxes.

Footprints in the catalog are EPSG:4326 (lon/lat). A footprint that crosses the
antimeridian is stored as a MultiPolygon split at ±180, and its bbox follows the STAC
convention (``west > east``), so both the SQLite R*Tree (two boxes) and PostGIS work.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from terrapipe.errors import QueryError

Bbox = tuple[float, float, float, float]  # west, south, east, north

_WORLD_WEST = box(-540.0, -90.0, -180.0, 90.0)
_WORLD = box(-180.0, -90.0, 180.0, 90.0)
_WORLD_EAST = box(180.0, -90.0, 540.0, 90.0)


def parse_geometry(value: Any) -> BaseGeometry:
    """A search geometry from WKT, GeoJSON (text or mapping), ``minx,miny,maxx,maxy`` or shapely.

    The result is valid, in [-180, 180] and split at the antimeridian. A bbox with
    ``minx > maxx`` is read as crossing the antimeridian.
    """
    if isinstance(value, BaseGeometry):
        geom = value
    elif isinstance(value, Mapping):
        geom = _from_geojson(value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        geom = _from_bbox(list(value), value)
    elif isinstance(value, str):
        geom = _from_text(value.strip())
    else:
        raise QueryError(f"invalid geometry {value!r}: expected WKT, GeoJSON or a bbox")
    if geom.is_empty:
        raise QueryError(f"invalid geometry {_short(value)}: it is empty")
    return normalize_footprint(geom)


def _from_text(text: str) -> BaseGeometry:
    if not text:
        raise QueryError("invalid geometry '': expected WKT, GeoJSON or minx,miny,maxx,maxy")
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QueryError(f"invalid GeoJSON geometry {_short(text)}: {exc}") from None
        return _from_geojson(doc, text)
    parts = text.split(",")
    if len(parts) == 4 and not text[:1].isalpha():
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise QueryError(
                f"invalid bbox {text!r}: expected four numbers minx,miny,maxx,maxy"
            ) from None
        return _from_bbox(numbers, text)
    try:
        return shapely.from_wkt(text)
    except shapely.errors.GEOSException as exc:
        raise QueryError(f"invalid WKT geometry {_short(text)}: {exc}") from None


def _from_geojson(doc: Any, original: Any) -> BaseGeometry:
    if isinstance(doc, Mapping) and doc.get("type") == "Feature":
        doc = doc.get("geometry")
    if not isinstance(doc, Mapping) or "type" not in doc:
        raise QueryError(f"invalid GeoJSON geometry {_short(original)}: no 'type'")
    try:
        return shape(doc)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise QueryError(f"invalid GeoJSON geometry {_short(original)}: {exc}") from None


def _from_bbox(numbers: list[Any], original: Any) -> BaseGeometry:
    if len(numbers) != 4:
        raise QueryError(f"invalid bbox {original!r}: expected minx,miny,maxx,maxy")
    try:
        minx, miny, maxx, maxy = (float(n) for n in numbers)
    except (TypeError, ValueError):
        raise QueryError(f"invalid bbox {original!r}: expected four numbers") from None
    if not all(math.isfinite(n) for n in (minx, miny, maxx, maxy)):
        raise QueryError(f"invalid bbox {original!r}: values must be finite")
    if not (-90 <= miny <= maxy <= 90):
        raise QueryError(
            f"invalid bbox {original!r}: latitudes must satisfy -90 <= miny <= maxy <= 90"
        )
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180):
        raise QueryError(f"invalid bbox {original!r}: longitudes must be within [-180, 180]")
    if minx > maxx:  # crosses the antimeridian
        return MultiPolygon([box(minx, miny, 180.0, maxy), box(-180.0, miny, maxx, maxy)])
    return box(minx, miny, maxx, maxy)


def normalize_footprint(geom: BaseGeometry) -> BaseGeometry:
    """The geometry made valid, unwrapped across the antimeridian and split at ±180.

    A ring with an edge jumping more than 180° of longitude (and not touching ±180) is
    read as a naive antimeridian crossing (``170 .. -170``); coordinates past ±180 are
    cut there and wrapped back.
    """
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    geom = _polygonal(geom)
    minx, miny, maxx, maxy = geom.bounds
    if miny < -90 - 1e-9 or maxy > 90 + 1e-9:
        raise QueryError(f"invalid geometry {_short(geom.wkt)}: latitudes outside [-90, 90]")
    if maxx - minx > 180 and minx > -180 and maxx < 180 and _jumps_antimeridian(geom):
        geom = _unwrap(geom)
        minx, _, maxx, _ = geom.bounds
    if minx < -180 or maxx > 180:
        geom = _split(geom)
    return geom


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Keep the areal part; points and lines become tiny areas so they can still match."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        polys = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        if polys:
            return shapely.union_all(polys)
    return geom  # points / lines: intersects works on them as they are


def _jumps_antimeridian(geom: BaseGeometry) -> bool:
    """True when an edge jumps more than 180° in longitude (a naive crossing polygon)."""
    for poly in getattr(geom, "geoms", [geom]):
        rings = [poly.exterior, *poly.interiors] if isinstance(poly, Polygon) else [poly]
        for ring in rings:
            xs = [c[0] for c in ring.coords]
            if any(abs(b - a) > 180 for a, b in zip(xs, xs[1:], strict=False)):
                return True
    return False


def _unwrap(geom: BaseGeometry) -> BaseGeometry:
    """Shift negative longitudes by +360 so the geometry is continuous across 180°."""
    return shapely.transform(geom, _shift_negative)


def _shift_negative(xy: np.ndarray) -> np.ndarray:
    xy = xy.copy()
    xy[:, 0] = np.where(xy[:, 0] < 0, xy[:, 0] + 360.0, xy[:, 0])
    return xy


def _split(geom: BaseGeometry) -> BaseGeometry:
    """Cut a geometry spanning beyond ±180 into parts shifted back into [-180, 180]."""
    parts = []
    for frame, shift in ((_WORLD_WEST, 360.0), (_WORLD, 0.0), (_WORLD_EAST, -360.0)):
        piece = geom.intersection(frame)
        if not piece.is_empty:
            parts.append(shapely.affinity.translate(piece, xoff=shift) if shift else piece)
    polys = []
    for part in parts:
        polys.extend(_polygons(part))
    if polys:
        return MultiPolygon(polys) if len(polys) > 1 else polys[0]
    return shapely.union_all(parts)


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom] if not geom.is_empty else []
    return [p for g in getattr(geom, "geoms", []) for p in _polygons(g)]


def footprint_bbox(geom: BaseGeometry) -> Bbox:
    """(west, south, east, north); ``west > east`` when the footprint crosses ±180."""
    minx, miny, maxx, maxy = geom.bounds
    if minx > -180 or maxx < 180 or not hasattr(geom, "geoms"):
        return (minx, miny, maxx, maxy)
    # Touches both ±180: is it narrower seen as crossing the antimeridian?
    shifted = [
        shapely.affinity.translate(g, xoff=360.0) if g.bounds[2] <= 0 else g for g in geom.geoms
    ]
    sminx, _, smaxx, _ = shapely.union_all(shifted).bounds
    if smaxx - sminx < maxx - minx and smaxx > 180:
        return (sminx, miny, smaxx - 360.0, maxy)
    return (minx, miny, maxx, maxy)


def bbox_boxes(bbox: Bbox) -> list[Bbox]:
    """The bbox as one or two plain boxes (two when it crosses the antimeridian)."""
    west, south, east, north = bbox
    if west <= east:
        return [bbox]
    return [(west, south, 180.0, north), (-180.0, south, east, north)]


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
