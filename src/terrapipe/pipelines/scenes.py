"""Optical scenes for the NDVI pipeline: which files hold red and NIR, for which date.

``scenes`` is a comma-separated list of files, folders (searched recursively for
``.tif``/``.tiff``/``.jp2``/``.vrt``) or glob patterns; or ``catalog:{JSON criteria}``, a
catalog search (as ``terrapipe catalog search -q``) over the datasets that intersect the
ROI, whose downloaded raster files are the scenes (dated by the dataset's start time).

``bands`` maps ``red`` and ``nir`` either to a token of the file names (``red:B4,nir:B5``
for Landsat 8/9, whose bands are separate files ``..._B4.TIF``) or to band numbers inside
each file (``red:3,nir:4`` for a multi-band image per date). The date of a scene is the
first ``YYYYMMDD`` or ``YYYY-MM-DD`` in its file name, else the file's ``date`` /
``TIFFTAG_DATETIME`` tag.

:func:`read_ndvi` reads one scene's NDVI over the ROI. It applies ``nodata`` (a fill value
such as Landsat Level-1's 0, which carries no nodata tag) to both bands itself; when the
geo layer's NDVI functions take a band number and a nodata override, it becomes a call to
them.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terrapipe.errors import InvalidInput

if TYPE_CHECKING:
    from terrapipe.geo.raster import RasterArray
    from terrapipe.geo.roi import ROI

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")
CATALOG_PREFIX = "catalog:"
DEFAULT_BANDS = "red:red,nir:nir"
_DATE_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?!\d)")


@dataclass(frozen=True)
class Scene:
    """One date's red and NIR: file and band number of each (the same file when the
    scene is one multi-band image)."""

    date: str
    red: str
    red_band: int
    nir: str
    nir_band: int

    def to_item(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Scene:
        return cls(**item)

    @property
    def paths(self) -> list[Path]:
        return sorted({Path(self.red), Path(self.nir)})


def parse_bands(text: str) -> dict[str, str | int]:
    """``red:B4,nir:B5`` -> ``{"red": "B4", "nir": "B5"}``; numbers become band indexes."""
    mapping: dict[str, str | int] = {}
    for part in (text or DEFAULT_BANDS).split(","):
        name, sep, value = part.partition(":")
        name, value = name.strip().lower(), value.strip()
        if not sep or not name or not value:
            raise InvalidInput(
                f"parameter 'bands': {text!r} is not NAME:VALUE pairs (e.g. red:B4,nir:B5 "
                "for band files, red:3,nir:4 for band numbers)"
            )
        if name in mapping:
            raise InvalidInput(f"parameter 'bands': {name!r} is given twice in {text!r}")
        mapping[name] = int(value) if value.isdigit() else value
    missing = [b for b in ("red", "nir") if b not in mapping]
    if missing:
        raise InvalidInput(f"parameter 'bands': {text!r} has no {' or '.join(missing)}")
    kinds = {type(mapping["red"]), type(mapping["nir"])}
    if len(kinds) > 1:
        raise InvalidInput(
            f"parameter 'bands': {text!r} mixes band numbers and file-name tokens; use one"
        )
    if int in kinds and min(mapping["red"], mapping["nir"]) < 1:  # type: ignore[type-var]
        raise InvalidInput(f"parameter 'bands': band numbers start at 1 ({text!r})")
    return {"red": mapping["red"], "nir": mapping["nir"]}


def expand_scenes(text: str) -> list[Path]:
    """The raster files named by ``scenes`` (files, folders, globs), sorted, no repeats."""
    found: set[Path] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        path = Path(part).expanduser()
        if path.is_dir():
            found.update(
                f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in RASTER_SUFFIXES
            )
        elif path.is_file():
            found.add(path)
        elif glob.has_magic(part):
            found.update(Path(f) for f in glob.glob(str(path), recursive=True) if Path(f).is_file())
        else:
            raise InvalidInput(f"parameter 'scenes': no such file or folder: {path}")
    if not found:
        raise InvalidInput(f"parameter 'scenes': no raster files in {text!r}")
    return sorted(p.resolve() for p in found)


def is_catalog_query(text: str) -> bool:
    return text.strip().startswith(CATALOG_PREFIX)


def catalog_files(text: str, *, db: Any, geometry: Any = None) -> list[tuple[Path, dt.date | None]]:
    """The downloaded raster files of the catalog datasets matching ``catalog:{...}``
    (and intersecting ``geometry``, EPSG:4326) in the run's database ``db``, each with its
    dataset's date."""
    from terrapipe.catalog.query import MAX_LIMIT, search

    body = text.strip()[len(CATALOG_PREFIX) :].strip() or "{}"
    try:
        criteria = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"parameter 'scenes': catalog criteria {body!r} are not JSON ({exc.msg}); "
            'e.g. scenes=catalog:{"collection": "landsat-c2l1"}'
        ) from None
    if not isinstance(criteria, dict):
        raise InvalidInput(f"parameter 'scenes': catalog criteria must be a JSON object: {body}")
    datasets = search(db, criteria, geometry=geometry, limit=MAX_LIMIT)
    found: list[tuple[Path, dt.date | None]] = []
    for ds in datasets:
        when = ds.time_start.date() if ds.time_start else None
        for uri in ds.uris:
            local = uri.local_path or (
                uri.uri[len("file://") :] if uri.uri.startswith("file://") else uri.uri
            )
            path = Path(local)
            if path.suffix.lower() in RASTER_SUFFIXES and path.is_file():
                found.append((path.resolve(), when))
    if not found:
        raise InvalidInput(
            f"parameter 'scenes': the catalog query {body} found {len(datasets)} dataset(s) "
            "over the ROI but no downloaded raster file; download them first "
            "(`terrapipe download`)"
        )
    return sorted(set(found), key=lambda f: str(f[0]))


def scene_paths(text: str, *, db: Any = None, geometry: Any = None) -> list[Path]:
    """What to fingerprint for ``scenes``: the folders and files as given (a folder's
    fingerprint covers the files below it, so adding one reruns the listing); for a
    catalog query, the files it finds."""
    if is_catalog_query(text):
        return [f for f, _ in catalog_files(text, db=db, geometry=geometry)]
    out: list[Path] = []
    for part in (p.strip() for p in text.split(",")):
        if part and not glob.has_magic(part):
            out.append(Path(part).expanduser())
    return out or expand_scenes(text)


def file_date(path: Path) -> dt.date:
    """The acquisition date of a file: from its name, else from its tags."""
    m = _DATE_RE.search(path.name)
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            pass
    import rasterio

    try:
        with rasterio.open(path) as src:
            tags = src.tags()
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidInput(f"parameter 'scenes': cannot read {path}: {exc}") from None
    for key in ("date", "DATE", "TIFFTAG_DATETIME", "ACQUISITION_DATE"):
        m = _DATE_RE.search(tags.get(key, "").replace(":", "-"))
        if m:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    raise InvalidInput(
        f"parameter 'scenes': no date in the name or tags of {path.name} "
        "(name it with YYYYMMDD or YYYY-MM-DD, or set a 'date' tag)"
    )


def _tokens(path: Path) -> list[str]:
    return [t for t in re.split(r"[_\-.\s]+", path.stem.lower()) if t]


def _band_of(path: Path, bands: dict[str, str | int]) -> str | None:
    tokens = _tokens(path)
    hits = [name for name, token in bands.items() if str(token).lower() in tokens]
    return hits[0] if len(hits) == 1 else None


def find_scenes(
    text: str, bands_text: str = "", *, db: Any = None, geometry: Any = None
) -> list[Scene]:
    """The scenes named by ``scenes`` with the ``bands`` mapping, sorted by date
    (``geometry``, EPSG:4326, narrows a catalog query to the datasets over the ROI).
    Several scenes may share a date (neighbouring footprints): see :func:`one_per_date`."""
    if is_catalog_query(text):
        dated = catalog_files(text, db=db, geometry=geometry)
    else:
        dated = [(f, None) for f in expand_scenes(text)]
    return group_scenes(dated, parse_bands(bands_text), source=text)


def _scene_key(path: Path, token: str) -> tuple[str, str]:
    """What the band files of one scene share: their folder and name without the token."""
    rest = [t for t in _tokens(path) if t != token.lower()]
    return str(path.parent), "_".join(rest)


def group_scenes(
    files: list[tuple[Path, dt.date | None]], bands: dict[str, str | int], *, source: str
) -> list[Scene]:
    """Pair the red and NIR files of each scene (date given, else :func:`file_date`)."""
    if isinstance(bands["red"], int):
        red, nir = int(bands["red"]), int(bands["nir"])
        scenes = [
            Scene((known or file_date(f)).isoformat(), str(f), red, str(f), nir)
            for f, known in files
        ]
        return sorted(scenes, key=lambda s: (s.date, s.red))
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for f, known in files:
        band = _band_of(f, bands)
        if band is None:
            continue  # another band of the product, a QA file, ...
        slot = groups.setdefault(_scene_key(f, str(bands[band])), {})
        slot[band] = f
        slot.setdefault("date", (known or file_date(f)).isoformat())
    if not groups:
        raise InvalidInput(
            f"parameter 'scenes': no file name in {source!r} has the band tokens "
            f"{bands['red']!r} / {bands['nir']!r}; set bands=red:TOKEN,nir:TOKEN"
        )
    scenes = []
    for slot in groups.values():
        missing = [b for b in ("red", "nir") if b not in slot]
        if missing:
            have = next(v for k, v in slot.items() if k != "date")
            raise InvalidInput(
                f"parameter 'scenes': no {missing[0]} file (band token "
                f"{bands[missing[0]]!r}) beside {have}"
            )
        scenes.append(Scene(slot["date"], str(slot["red"]), 1, str(slot["nir"]), 1))
    return sorted(scenes, key=lambda s: (s.date, s.red))


def one_per_date(scenes: list[Scene]) -> list[Scene]:
    """The scenes, refusing two on one date (mosaicking is not done here)."""
    seen: dict[str, Scene] = {}
    for scene in scenes:
        if scene.date in seen:
            raise InvalidInput(
                f"parameter 'scenes': two scenes over the ROI on {scene.date}: "
                f"{Path(seen[scene.date].red).name} and {Path(scene.red).name}; "
                "give one scene per date (mosaic them first)"
            )
        seen[scene.date] = scene
    return scenes


def over_roi(scenes: list[Scene], roi: ROI) -> list[Scene]:
    """The scenes whose red band's extent meets the ROI (a folder may hold other
    footprints: neighbouring Landsat path/rows, other tiles); reads metadata only."""
    import shapely

    from terrapipe.geo.raster import open_raster

    kept = []
    for scene in scenes:
        with open_raster(scene.red) as src:
            if src.crs is None:
                raise InvalidInput(f"parameter 'scenes': {scene.red} has no CRS")
            extent = shapely.box(*src.bounds)
            crs = src.crs
        if roi.to_crs(crs).geometry.intersects(extent):
            kept.append(scene)
    return kept


def sample_scenes(manifest: Any) -> list[Scene]:
    """The sample region's scenes (red and NIR files per date, from its manifest)."""
    scenes = []
    for when in manifest.dates:
        red, nir = manifest.band_paths(when)
        scenes.append(Scene(when.isoformat(), str(red), 1, str(nir), 1))
    return scenes


def read_ndvi(
    scene: Scene,
    roi: ROI,
    *,
    nodata: float | None = None,
    scale: float | None = None,
    offset: float | None = None,
) -> RasterArray:
    """NDVI (float32, NaN invalid) of one scene over the ROI's window, NaN outside the ROI.

    Each band is scaled by its own scale/offset tags, or by ``scale`` / ``offset`` when
    given (e.g. Landsat Collection 2 Level-2: 0.0000275 and -0.2, which the files do not
    carry). ``nodata`` replaces the bands' nodata tags (cells whose stored value equals it
    in either band are invalid).
    """
    import numpy as np
    import rasterio.features

    from terrapipe.errors import GridMismatch
    from terrapipe.geo.raster import RasterArray, open_raster, roi_window
    from terrapipe.geo.timeseries import ndvi

    with open_raster(scene.red) as r, open_raster(scene.nir) as n:
        for path, src, band in ((scene.red, r, scene.red_band), (scene.nir, n, scene.nir_band)):
            if band > src.count:
                raise InvalidInput(
                    f"parameter 'bands': {Path(path).name} has {src.count} band(s), not {band}"
                )
        if (r.width, r.height) != (n.width, n.height) or not r.transform.almost_equals(n.transform):
            raise GridMismatch(f"red and NIR grids differ: {scene.red} vs {scene.nir}")
        if r.crs != n.crs:
            raise GridMismatch(f"red and NIR CRS differ: {scene.red} vs {scene.nir}")
        window, local = roi_window(roi, r.transform, (r.height, r.width), r.crs, name=scene.red)
        red = r.read(scene.red_band, window=window)
        nir = n.read(scene.nir_band, window=window)
        i, j = scene.red_band - 1, scene.nir_band - 1
        red_nodata = nodata if nodata is not None else r.nodatavals[i]
        nir_nodata = nodata if nodata is not None else n.nodatavals[j]
        r_scale = scale if scale is not None else r.scales[i]
        n_scale = scale if scale is not None else n.scales[j]
        r_offset = offset if offset is not None else r.offsets[i]
        n_offset = offset if offset is not None else n.offsets[j]
        if not (np.isfinite(r_scale) and np.isfinite(n_scale)) or 0 in (r_scale, n_scale):
            raise InvalidInput(f"parameter 'scale': invalid scale factor for {scene.date}")
        transform, crs = r.window_transform(window), r.crs
    # scale each band by its own tags, then NDVI on reflectances (scale 1 from here on)
    invalid = np.zeros(red.shape, dtype=bool)
    if red_nodata is not None:
        invalid |= red == red_nodata
    if nir_nodata is not None:
        invalid |= nir == nir_nodata
    red_r = np.where(invalid, np.nan, red.astype("float64") * r_scale + r_offset)
    nir_r = np.where(invalid, np.nan, nir.astype("float64") * n_scale + n_offset)
    values = ndvi(red_r, nir_r)
    outside = rasterio.features.geometry_mask(
        [local.geometry], out_shape=values.shape, transform=transform
    )
    values[outside] = np.nan
    return RasterArray(values, transform, crs, float("nan"))
