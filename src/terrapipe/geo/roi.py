"""Regions of interest: from an admin path, a bbox, WKT/GeoJSON text or a vector file.

Every constructor ends in :func:`make_roi`, which checks the CRS, rejects empty or
non-polygonal geometry and repairs invalid geometry with ``shapely.make_valid``, reporting
the repair in ``ROI.repaired`` and ``ROI.notes``. :func:`parse_roi` picks the constructor
from the text. Admin names match ignoring case, spaces and accents; a miss lists the three
closest names.

Large and odd regions: in a geographic CRS a bbox with ``minx > maxx`` crosses the
antimeridian, and geometry with longitudes beyond ±180 is wrapped back into -180..180 (so
``170,-10,-170,10`` and a polygon from 170 to 190 both mean the 20 degrees across 180).
Before an ROI (or a zone) is reprojected onto some data, :func:`clip_to_footprint` cuts it
to the data's footprint expressed in the ROI's own CRS (a densified, padded bbox, split at
the antimeridian), so a world box never has to be projected into a UTM zone.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import shapely.affinity
from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from terrapipe.errors import AdminNameNotFound, RoiError, RoiOutsideData
from terrapipe.geo.crs import parse_crs
from terrapipe.geo.naming import fold, slugify

__all__ = [
    "ADMIN_LEVELS",
    "ROI",
    "check_overlap",
    "clip_to_footprint",
    "footprint",
    "make_roi",
    "parse_crs",
    "parse_levels",
    "parse_roi",
    "roi_from_admin",
    "roi_from_bbox",
    "roi_from_file",
    "roi_from_geojson",
    "roi_from_wkt",
    "roi_kind",
    "wrap_longitudes",
]

ADMIN_LEVELS: tuple[str, ...] = ("state", "district", "block")
WGS84 = CRS.from_epsg(4326)

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_BBOX_RE = re.compile(rf"^\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*$")
_WKT_RE = re.compile(
    r"^\s*(?:SRID=\d+;\s*)?(POLYGON|MULTIPOLYGON|GEOMETRYCOLLECTION|POINT|MULTIPOINT|"
    r"LINESTRING|MULTILINESTRING)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ROI:
    """A region of interest: polygonal geometry in a CRS, a label and how it was made."""

    geometry: BaseGeometry
    crs: CRS
    label: str
    kind: str  # admin | bbox | wkt | geojson | file
    repaired: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def slug(self) -> str:
        """ASCII slug of the label, used by the naming helper for layer names and paths."""
        return slugify(self.label)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(self.geometry.bounds)  # type: ignore[return-value]

    def to_crs(self, crs: Any) -> ROI:
        """The same ROI in another CRS (edges densified first so they bend correctly)."""
        target = parse_crs(crs)
        if target == self.crs:
            return self
        geom = self.geometry
        minx, miny, maxx, maxy = geom.bounds
        span = max(maxx - minx, maxy - miny)
        if span > 0 and shapely.get_num_coordinates(geom) < 10_000:
            geom = shapely.segmentize(geom, span / 64)
        out = gpd.GeoSeries([geom], crs=self.crs).to_crs(target).iloc[0]
        if not out.is_valid:
            out = _polygonal(shapely.make_valid(out))
        return replace(self, geometry=out, crs=target)

    def clip_to(self, bounds: Sequence[float], crs: Any, *, name: str = "the data") -> ROI:
        """The part of this ROI over data with ``bounds`` in ``crs``, still in the ROI's CRS.

        Raises :class:`RoiOutsideData` naming ``name`` when nothing is left. When no footprint
        can be computed (a transform PROJ refuses) the ROI is returned whole.
        """
        clipped = clip_to_footprint(self.geometry, self.crs, bounds, crs)
        if clipped is None:
            return self
        clipped = _polygonal(clipped)
        if clipped.is_empty or clipped.area == 0:
            where = f"{tuple(round(b, 6) for b in bounds)} in {parse_crs(crs).to_string()}"
            raise RoiOutsideData(
                f"ROI {self.label!r} does not intersect {name} (data bounds {where})"
            )
        return replace(self, geometry=clipped)

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """A one-row GeoDataFrame (columns ``label``, ``slug``, ``kind``) for writing."""
        return gpd.GeoDataFrame(
            {"label": [self.label], "slug": [self.slug], "kind": [self.kind]},
            geometry=[self.geometry],
            crs=self.crs,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (geometry as GeoJSON in EPSG:4326), for records and STAC."""
        geom4326 = self.to_crs(WGS84).geometry
        return {
            "label": self.label,
            "slug": self.slug,
            "kind": self.kind,
            "crs": self.crs.to_string(),
            "bbox_4326": list(geom4326.bounds),
            "geometry_4326": shapely.geometry.mapping(geom4326),
            "repaired": self.repaired,
            "notes": list(self.notes),
        }


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Keep only the polygonal parts of a geometry (make_valid may add lines or points)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
        if parts:
            return shapely.unary_union(parts)
    return shapely.Polygon()


def wrap_longitudes(geom: BaseGeometry) -> BaseGeometry:
    """Geographic geometry with parts beyond ±180 shifted back into -180..180 (split at 180)."""
    minx, _, maxx, _ = geom.bounds
    if minx >= -180 and maxx <= 180:
        return geom
    parts = []
    for shift in (-360.0, 0.0, 360.0):
        window = box(-180 - shift, -90, 180 - shift, 90)
        piece = geom.intersection(window)
        if not piece.is_empty:
            parts.append(shapely.affinity.translate(piece, xoff=shift))
    return _polygonal(shapely.unary_union(parts)) if parts else geom


def footprint(
    bounds: Sequence[float], crs: Any, target: Any, *, pad: float = 0.05, margin: float = 0.0
) -> BaseGeometry | None:
    """The area of data with ``bounds`` in ``crs``, as polygon(s) in ``target``.

    The bbox of the data's densified edges in ``target`` (poles and the antimeridian handled
    by PROJ), padded by ``pad`` of its span so the curved edges stay inside, plus ``margin``
    (``target`` units) on each side; split into two boxes when it crosses the antimeridian.
    ``None`` when PROJ cannot transform it.
    """
    src, dst = parse_crs(crs), parse_crs(target)
    if src == dst:
        return box(*bounds)
    try:
        transformer = Transformer.from_crs(src, dst, always_xy=True)
        west, south, east, north = transformer.transform_bounds(*bounds, densify_pts=21)
    except (ProjError, ValueError):
        return None
    if not np.all(np.isfinite([west, south, east, north])):
        return None
    if not dst.is_geographic:
        eps = 1e-6 * max(1.0, abs(west), abs(east), abs(south), abs(north))
        dx, dy = (east - west) * pad + margin + eps, (north - south) * pad + margin + eps
        return box(west - dx, south - dy, east + dx, north + dy)
    if east < west:  # crosses the antimeridian
        east += 360.0
    dx, dy = (east - west) * pad + margin + 1e-9, (north - south) * pad + margin + 1e-9
    south, north = max(-90.0, south - dy), min(90.0, north + dy)
    west, east = west - dx, east + dx
    if east - west >= 360.0 or (south <= -90.0 or north >= 90.0) and east - west > 300.0:
        return box(-180.0, south, 180.0, north)
    return wrap_longitudes(box(west, south, east, north))


def clip_to_footprint(
    geom: BaseGeometry, crs: Any, bounds: Sequence[float], data_crs: Any
) -> BaseGeometry | None:
    """``geom`` (in ``crs``) cut to the footprint of data with ``bounds`` in ``data_crs``.

    Done in the geometry's own CRS, so the part that is left can be reprojected onto the
    data safely. ``None`` when no footprint can be computed (use the geometry whole).
    """
    area = footprint(bounds, data_crs, crs)
    if area is None:
        return None
    if not geom.intersects(area):
        return shapely.Polygon()
    if area.contains(geom):
        return geom
    return geom.intersection(area)


def make_roi(
    geometry: BaseGeometry, crs: Any, *, label: str, kind: str, notes: Sequence[str] = ()
) -> ROI:
    """Check and normalise a geometry into an ROI: repair if invalid, reject empty/non-areal."""
    if not isinstance(geometry, BaseGeometry):
        raise RoiError(f"ROI {label!r}: not a geometry: {type(geometry).__name__}")
    crs_obj = parse_crs(crs)
    notes = list(notes)
    if geometry.is_empty:
        raise RoiError(f"ROI {label!r} is empty")
    repaired = False
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        geometry = _polygonal(shapely.make_valid(geometry))
        repaired = True
        notes.append(f"invalid geometry repaired with make_valid ({reason})")
    if geometry.geom_type == "GeometryCollection":
        geometry = _polygonal(geometry)
    if crs_obj.is_geographic and geometry.geom_type in ("Polygon", "MultiPolygon"):
        minx, _, maxx, _ = geometry.bounds
        if minx < -180 or maxx > 180:
            if minx < -540 or maxx > 540:
                raise RoiError(f"ROI {label!r}: longitudes outside -540..540 in {crs_obj}")
            geometry = wrap_longitudes(geometry)
            notes.append("longitudes beyond ±180 wrapped across the antimeridian")
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise RoiError(f"ROI {label!r} must be a polygon or multipolygon, got {geometry.geom_type}")
    if geometry.is_empty or geometry.area == 0:
        raise RoiError(f"ROI {label!r} has no area")
    return ROI(
        geometry=geometry,
        crs=crs_obj,
        label=label,
        kind=kind,
        repaired=repaired,
        notes=tuple(notes),
    )


def _short_hash(geometry: BaseGeometry) -> str:
    return hashlib.sha1(shapely.to_wkb(geometry, hex=True).encode()).hexdigest()[:8]


def roi_from_bbox(bbox: str | Sequence[float], *, crs: Any = None, label: str | None = None) -> ROI:
    """ROI from ``minx,miny,maxx,maxy`` (text or 4 numbers), EPSG:4326 unless ``crs`` given.

    In a geographic CRS, ``minx > maxx`` (narrower than 180 degrees, e.g.
    ``170,-10,-170,10``) is a box across the antimeridian.
    """
    if isinstance(bbox, str):
        m = _BBOX_RE.match(bbox)
        if not m:
            raise RoiError(f"invalid bbox: {bbox!r} (expected 'minx,miny,maxx,maxy')")
        values = [float(v) for v in m.groups()]
    else:
        try:
            values = [float(v) for v in bbox]
        except (TypeError, ValueError) as exc:
            raise RoiError(f"invalid bbox: {bbox!r}") from exc
        if len(values) != 4:
            raise RoiError(f"invalid bbox: {bbox!r} (expected 4 numbers)")
    minx, miny, maxx, maxy = values
    crs_obj = parse_crs(crs if crs is not None else WGS84)
    # west > east across the antimeridian, as RFC 7946 writes it; a box more than half way
    # round the globe that way is far more likely swapped corners, so it stays an error
    across = crs_obj.is_geographic and minx > maxx and maxx + 360.0 - minx < 180.0
    if not ((minx < maxx or across) and miny < maxy):
        raise RoiError(
            f"invalid bbox: {bbox!r} (need minx < maxx and miny < maxy; a box across the "
            "antimeridian is written west > east and is narrower than 180 degrees)"
        )
    if crs_obj.is_geographic and not (
        min(minx, maxx) >= -180 and max(minx, maxx) <= 180 and miny >= -90 and maxy <= 90
    ):
        raise RoiError(f"invalid bbox: {bbox!r} (outside -180..180, -90..90 in {crs_obj})")
    geom = box(minx, miny, maxx + 360.0 if across else maxx, maxy)
    if across:
        geom = wrap_longitudes(geom)
    return make_roi(geom, crs_obj, label=label or f"bbox_{_short_hash(geom)}", kind="bbox")


def roi_from_wkt(text: str, *, crs: Any = None, label: str | None = None) -> ROI:
    """ROI from WKT (``SRID=n;`` prefix allowed), EPSG:4326 unless ``crs`` or SRID given."""
    body = text.strip()
    srid = re.match(r"^SRID=(\d+);", body, re.IGNORECASE)
    if srid:
        body = body[srid.end() :]
        crs = crs if crs is not None else int(srid.group(1))
    try:
        geom = shapely.from_wkt(body)
    except shapely.errors.GEOSException as exc:
        raise RoiError(f"invalid WKT: {_clip(text)!r}: {exc}") from exc
    return make_roi(
        geom,
        crs if crs is not None else WGS84,
        label=label or f"geom_{_short_hash(geom)}",
        kind="wkt",
    )


def roi_from_geojson(text: str | dict, *, crs: Any = None, label: str | None = None) -> ROI:
    """ROI from GeoJSON text (geometry, Feature or FeatureCollection, dissolved), EPSG:4326."""
    try:
        doc = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise RoiError(f"invalid GeoJSON: {_clip(str(text))!r}: {exc}") from exc
    if not isinstance(doc, dict) or "type" not in doc:
        raise RoiError(f"invalid GeoJSON: {_clip(str(text))!r} (no 'type')")
    try:
        if doc["type"] == "FeatureCollection":
            geoms = [shape(f["geometry"]) for f in doc.get("features", []) if f.get("geometry")]
        elif doc["type"] == "Feature":
            geoms = [shape(doc["geometry"])] if doc.get("geometry") else []
        else:
            geoms = [shape(doc)]
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        raise RoiError(f"invalid GeoJSON: {_clip(str(text))!r}: {exc}") from exc
    if not geoms:
        raise RoiError(f"GeoJSON ROI is empty: {_clip(str(text))!r}")
    notes: list[str] = []
    if any(not g.is_valid for g in geoms):
        geoms = [shapely.make_valid(g) if not g.is_valid else g for g in geoms]
        notes.append("invalid geometry repaired with make_valid")
    geom = shapely.unary_union(geoms)
    roi = make_roi(
        geom,
        crs if crs is not None else WGS84,
        label=label or f"geom_{_short_hash(geom)}",
        kind="geojson",
        notes=notes,
    )
    return replace(roi, repaired=True) if notes else roi


def roi_from_file(
    path: str | Path,
    *,
    attribute: str | None = None,
    value: Any = None,
    crs: Any = None,
    label: str | None = None,
) -> ROI:
    """ROI from a vector file: all features dissolved, or those with ``attribute == value``."""
    from terrapipe.geo.vector import read_vector  # local: vector imports roi

    gdf = read_vector(path)
    name = Path(path).stem
    if attribute is not None:
        if attribute not in gdf.columns:
            raise RoiError(
                f"{path}: no attribute {attribute!r} (columns: {', '.join(map(str, gdf.columns))})"
            )
        col = gdf[attribute]
        chosen = gdf[col.astype(str).map(fold) == fold(str(value))]
        if chosen.empty:
            near = _closest(str(value), col.astype(str).unique().tolist())
            raise AdminNameNotFound(
                f"{path}: no feature with {attribute}={value!r}; closest: {near}"
            )
        gdf = chosen
        name = f"{name}_{value}"
    if crs is not None and gdf.crs is None:
        gdf = gdf.set_crs(parse_crs(crs))
    if gdf.crs is None:
        raise RoiError(f"{path}: vector file has no CRS; pass crs=")
    notes: list[str] = []
    geoms = list(gdf.geometry.dropna())
    if any(not g.is_valid for g in geoms):
        geoms = [shapely.make_valid(g) if not g.is_valid else g for g in geoms]
        notes.append(f"invalid geometry in {Path(path).name} repaired with make_valid")
    if not geoms:
        raise RoiError(f"{path}: no geometry to use as ROI")
    roi = make_roi(
        shapely.unary_union(geoms), gdf.crs, label=label or name, kind="file", notes=notes
    )
    return replace(roi, repaired=True) if notes else roi


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _closest(name: str, candidates: Sequence[str], n: int = 3) -> str:
    """The ``n`` candidates closest to ``name`` (compared folded), quoted and comma separated."""
    by_fold: dict[str, str] = {}
    for c in candidates:
        by_fold.setdefault(fold(c), c)
    matches = difflib.get_close_matches(fold(name), list(by_fold), n=n, cutoff=0.0)
    return ", ".join(repr(by_fold[m]) for m in matches) or "(none)"


def parse_levels(levels: str | Sequence[str] | None) -> tuple[str, ...]:
    """Admin level columns from ``"continent,name"`` (or ``/``-separated, or a sequence);
    ``None`` or empty gives :data:`ADMIN_LEVELS`."""
    if levels is None:
        return ADMIN_LEVELS
    parts = re.split(r"[,/]", levels) if isinstance(levels, str) else list(levels)
    names = tuple(str(p).strip() for p in parts if str(p).strip())
    if not names:
        return ADMIN_LEVELS
    if len(set(names)) != len(names):
        raise RoiError(f"invalid admin levels: {levels!r} (a column is named twice)")
    return names


def _levels_hint(levels: Sequence[str], boundaries: gpd.GeoDataFrame) -> str:
    columns = ", ".join(str(c) for c in boundaries.columns if c != boundaries.geometry.name)
    return f"levels: {'/'.join(levels)}; columns: {columns}"


def _deeper_match(rows: gpd.GeoDataFrame, levels: Sequence[str], name: str) -> list[str]:
    """Full paths of the rows whose name at a level below the current one is ``name``."""
    for depth, level in enumerate(levels):
        if depth == 0 or level not in rows.columns:
            continue
        hit = rows[rows[level].astype(str).map(fold) == fold(name)]
        if not hit.empty:
            paths = hit[list(levels[: depth + 1])].astype(str).agg("/".join, axis=1)
            return sorted(set(paths))[:3]
    return []


def roi_from_admin(
    path: str | Sequence[str],
    boundaries: gpd.GeoDataFrame,
    *,
    levels: str | Sequence[str] | None = ADMIN_LEVELS,
) -> ROI:
    """ROI from an admin path (``state/district/block`` or a prefix) in a boundary layer.

    ``levels`` names the boundary layer's columns, top level first (``continent,name``
    for Natural Earth); each part of the path matches its level ignoring case and accents.
    """
    levels = parse_levels(levels)
    parts = [p.strip() for p in (path.split("/") if isinstance(path, str) else path)]
    if not parts or any(not p for p in parts):
        raise RoiError(f"invalid admin path: {path!r} (expected '{'/'.join(levels)}')")
    missing = [lvl for lvl in levels if lvl not in boundaries.columns]
    if missing:
        raise RoiError(
            f"boundary layer has no column(s) {missing} for admin path {path!r} "
            f"({_levels_hint(levels, boundaries)}); name the level columns with "
            "-p levels=COL1,COL2 (or TERRAPIPE_ADMIN_LEVELS)"
        )
    if len(parts) > len(levels):
        raise RoiError(
            f"invalid admin path: {path!r} has {len(parts)} parts but the boundary layer "
            f"has {len(levels)} level(s) ({_levels_hint(levels, boundaries)}); "
            "shorten the path or name more levels with -p levels=..."
        )
    rows = boundaries
    matched: list[str] = []
    for depth, (level, name) in enumerate(zip(levels, parts, strict=False)):
        values = rows[level].astype(str)
        hit = rows[values.map(fold) == fold(name)]
        if hit.empty:
            where = f" in {'/'.join(matched)}" if matched else ""
            deeper = _deeper_match(rows, levels[depth:], name)
            hint = (
                f"; {name!r} is a {levels[depth + len(deeper[0].split('/')) - 1]}: "
                f"try {', '.join(repr('/'.join([*matched, d])) for d in deeper)}"
                if deeper
                else ""
            )
            raise AdminNameNotFound(
                f"unknown {level} {name!r}{where}; closest: {_closest(name, values.unique())}"
                f"{hint} ({_levels_hint(levels, boundaries)})"
            )
        matched.append(str(hit[level].iloc[0]))
        rows = hit
    if boundaries.crs is None:
        raise RoiError("boundary layer has no CRS")
    originals = list(rows.geometry.dropna())
    geoms = [g if g.is_valid else shapely.make_valid(g) for g in originals]
    repaired = any(not g.is_valid for g in originals)
    notes = ["invalid boundary geometry repaired with make_valid"] if repaired else []
    roi = make_roi(
        shapely.unary_union(geoms),
        boundaries.crs,
        label="/".join(matched),
        kind="admin",
        notes=notes,
    )
    return replace(roi, repaired=True) if repaired else roi


def _split_file_selector(text: str) -> tuple[str, str | None, str | None]:
    """``path#attr=value`` -> (path, attr, value); plain paths pass through."""
    if "#" in text:
        file_part, _, selector = text.rpartition("#")
        if "=" in selector:
            attr, _, value = selector.partition("=")
            return file_part, attr.strip(), value.strip()
    return text, None, None


def roi_kind(text: str) -> str:
    """Which kind of ROI :func:`parse_roi` reads from ``text``: ``geojson``, ``bbox``,
    ``wkt``, ``file`` or ``admin`` (only an admin path needs a boundary layer)."""
    s = text.strip()
    if s.startswith("{"):
        return "geojson"
    if _BBOX_RE.match(s):
        return "bbox"
    if _WKT_RE.match(s):
        return "wkt"
    if Path(_split_file_selector(s)[0]).expanduser().is_file():
        return "file"
    return "admin"


def parse_roi(
    text: str | ROI,
    *,
    boundaries: gpd.GeoDataFrame | str | Path | None = None,
    crs: Any = None,
    levels: str | Sequence[str] | None = None,
) -> ROI:
    """ROI from text: GeoJSON, bbox, WKT, a file (``path[#attr=value]``) or an admin path
    (matched in ``boundaries`` by the ``levels`` columns, default state/district/block)."""
    if isinstance(text, ROI):
        return text
    if not isinstance(text, str) or not text.strip():
        raise RoiError(f"empty or invalid ROI: {text!r}")
    s = text.strip()
    kind = roi_kind(s)
    if kind == "geojson":
        return roi_from_geojson(s, crs=crs)
    if kind == "bbox":
        return roi_from_bbox(s, crs=crs)
    if kind == "wkt":
        return roi_from_wkt(s, crs=crs)
    if kind == "file":
        file_part, attr, value = _split_file_selector(s)
        return roi_from_file(Path(file_part).expanduser(), attribute=attr, value=value, crs=crs)
    if boundaries is not None:
        if not isinstance(boundaries, gpd.GeoDataFrame):
            from terrapipe.geo.vector import read_vector

            boundaries = read_vector(boundaries)
        return roi_from_admin(s, boundaries, levels=levels)
    raise RoiError(
        f"cannot read ROI {_clip(s)!r}: not GeoJSON, bbox, WKT or an existing file, "
        "and no boundary layer was given for an admin path"
    )


def check_overlap(roi: ROI, bounds: Sequence[float], crs: Any, *, name: str) -> None:
    """Raise :class:`RoiOutsideData` naming ``name`` when the ROI misses ``bounds`` in ``crs``."""
    local = roi.clip_to(bounds, crs, name=name).to_crs(crs)
    if not local.geometry.intersects(box(*bounds)):
        raise RoiOutsideData(
            f"ROI {roi.label!r} does not intersect {name} "
            f"(data bounds {tuple(round(b, 6) for b in bounds)} in {parse_crs(crs).to_string()})"
        )
