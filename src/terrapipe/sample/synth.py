"""Pure synthesis of the fictional sample region: terrain, admin units, villages, land cover.

Everything is a function of a seeded ``numpy.random.Generator``; no I/O, no downloads.
Coordinates are metres in the region's UTM zone (``REGION_CRS``).
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from shapely.geometry import LineString, Polygon

REGION_CRS = "EPSG:32644"  # UTM 44N (central India)
ORIGIN = (380_000.0, 2_440_000.0)  # west, north
SIZE_M = 20_000.0
DEM_RES = 40.0
OPTICAL_RES = 80.0

LANDCOVER_CLASSES = {1: "crop", 2: "tree", 3: "shrub"}

ADMIN = {
    "Narmada Pradesh": {
        "Bālāgiri": ["Lānji", "Baihar"],
        "Sonpur": ["Amarkantak", "Pushprajgarh", "Jaithāri"],
    },
    "Wainganga": {
        "Seonī Kalan": ["Kurai", "Ghansor"],
        "Mandla": ["Nainpur", "Bichhia", "Niwās"],
    },
}
FACILITY_COUNTS = {"school": 60, "clinic": 14, "market": 9, "water_point": 30}


def grid_transform(res: float) -> Affine:
    """North-up transform of the region grid at ``res`` metres."""
    return Affine(res, 0.0, ORIGIN[0], 0.0, -res, ORIGIN[1])


def grid_shape(res: float) -> tuple[int, int]:
    n = int(round(SIZE_M / res))
    return (n, n)


def region_box() -> Polygon:
    west, north = ORIGIN
    return shapely.box(west, north - SIZE_M, west + SIZE_M, north)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise (FFT), scaled to unit standard deviation."""
    white = rng.standard_normal(shape)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (kx**2 + ky**2))
    field = np.fft.irfft2(np.fft.rfft2(white) * kernel, s=shape)
    return (field - field.mean()) / (field.std() or 1.0)


def make_dem(rng: np.random.Generator) -> np.ndarray:
    """Elevation (m, float32): a southward slope cut by meandering V-shaped valleys."""
    rows, cols = grid_shape(DEM_RES)
    yy, xx = np.mgrid[0:rows, 0:cols].astype("float64")
    y, x = yy / rows, xx / cols
    wobble = 0.35 * np.sin(2 * np.pi * (1.3 * y + rng.uniform())) + 0.15 * smooth_noise(
        rng, (rows, cols), 40
    )
    valleys = 70.0 * np.abs(np.sin(np.pi * (3.0 * x + wobble)))  # three main valleys
    ridges = 25.0 * np.abs(np.sin(np.pi * (9.0 * x + 2.5 * y + 0.6 * wobble)))
    dem = (
        650.0
        - 220.0 * y
        + 30.0 * x
        + valleys
        + ridges
        + 12.0 * smooth_noise(rng, (rows, cols), 12)
        + 2.0 * smooth_noise(rng, (rows, cols), 2)
    )
    return dem.astype("float32")


def _wavy_line(
    rng: np.random.Generator, *, vertical: bool, at: float, lo: float, hi: float, amp: float
) -> LineString:
    t = np.linspace(lo - 500, hi + 500, 60)
    phase = rng.uniform(0, 2 * np.pi)
    offset = at + amp * np.sin(2 * np.pi * (t - lo) / (hi - lo) * 1.5 + phase)
    offset += np.cumsum(rng.normal(0, amp * 0.05, t.size))
    pts = np.column_stack([offset, t]) if vertical else np.column_stack([t, offset])
    return LineString(pts)


def _split_n(rng: np.random.Generator, poly: Polygon, n: int, *, vertical: bool) -> list[Polygon]:
    """Split a polygon into ``n`` strips by wavy lines, ordered west->east or north->south."""
    minx, miny, maxx, maxy = poly.bounds
    pieces: list[Polygon] = []
    rest = poly
    far = 1e6
    for k in range(1, n):
        frac = k / n
        if vertical:
            line = _wavy_line(
                rng, vertical=True, at=minx + frac * (maxx - minx), lo=miny, hi=maxy, amp=500
            )
            coords = list(line.coords)  # south -> north
            side = Polygon(coords + [(minx - far, coords[-1][1]), (minx - far, coords[0][1])])
        else:
            line = _wavy_line(
                rng, vertical=False, at=maxy - frac * (maxy - miny), lo=minx, hi=maxx, amp=500
            )
            coords = list(line.coords)  # west -> east
            side = Polygon(coords + [(coords[-1][0], maxy + far), (coords[0][0], maxy + far)])
        pieces.append(rest.intersection(side))
        rest = rest.difference(side)
    pieces.append(rest)
    return [shapely.make_valid(p) for p in pieces]


def make_admin(rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Two states, two districts each, two or three blocks each (UTM polygons)."""
    rows = []
    states = _split_n(rng, region_box(), len(ADMIN), vertical=True)
    for state_geom, (state, districts) in zip(states, ADMIN.items(), strict=True):
        dist_geoms = _split_n(rng, state_geom, len(districts), vertical=False)
        for dist_geom, (district, blocks) in zip(dist_geoms, districts.items(), strict=True):
            block_geoms = _split_n(rng, dist_geom, len(blocks), vertical=True)
            for block_geom, block in zip(block_geoms, blocks, strict=True):
                rows.append(
                    {"state": state, "district": district, "block": block, "geometry": block_geom}
                )
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=REGION_CRS)
    gdf.insert(0, "block_id", [f"B{i + 1:02d}" for i in range(len(gdf))])
    gdf["geometry"] = shapely.make_valid(gdf.geometry.values)
    return gdf


def _random_points(rng: np.random.Generator, n: int, *, min_dist: float, margin: float):
    west, north = ORIGIN
    pts: list[tuple[float, float]] = []
    tries = 0
    while len(pts) < n and tries < n * 200:
        tries += 1
        p = (
            rng.uniform(west + margin, west + SIZE_M - margin),
            rng.uniform(north - SIZE_M + margin, north - margin),
        )
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 >= min_dist**2 for q in pts):
            pts.append(p)
    return np.array(pts)


_SYLLABLES = ["ka", "ra", "ma", "li", "pur", "ga", "on", "do", "si", "ni", "ba", "khe", "ta", "wa"]


def _village_name(rng: np.random.Generator) -> str:
    parts = rng.choice(_SYLLABLES, size=rng.integers(2, 4))
    return "".join(parts).capitalize()


def make_villages(rng: np.random.Generator, admin: gpd.GeoDataFrame, n: int = 150):
    """Irregular village polygons (150-400 m across), with name, population and admin unit."""
    centres = _random_points(rng, n, min_dist=900.0, margin=400.0)
    polys = []
    for cx, cy in centres:
        k = 12
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radius = rng.uniform(150, 380) * rng.uniform(0.75, 1.25, k)
        polys.append(
            Polygon(np.column_stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)]))
        )
    gdf = gpd.GeoDataFrame(
        {
            "village_id": [f"V{i + 1:03d}" for i in range(len(polys))],
            "name": [_village_name(rng) for _ in polys],
            "population": rng.integers(150, 6000, len(polys)),
        },
        geometry=shapely.make_valid(np.array(polys, dtype=object)),
        crs=REGION_CRS,
    )
    reps = gpd.GeoDataFrame(geometry=gdf.geometry.representative_point(), crs=REGION_CRS)
    joined = gpd.sjoin(reps, admin[["state", "district", "block", "geometry"]], how="left")
    joined = joined[~joined.index.duplicated()]
    for col in ("state", "district", "block"):
        gdf[col] = joined[col].to_numpy()
    return gdf


def make_facilities(rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Facility points of several kinds (``kind`` column), spread over the region."""
    rows = []
    for kind, count in FACILITY_COUNTS.items():
        pts = _random_points(rng, count, min_dist=300.0, margin=100.0)
        for i, (x, y) in enumerate(pts):
            rows.append(
                {
                    "kind": kind,
                    "name": f"{kind.replace('_', ' ').title()} {i + 1}",
                    "geometry": shapely.Point(x, y),
                }
            )
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=REGION_CRS)
    gdf.insert(0, "facility_id", [f"F{i + 1:03d}" for i in range(len(gdf))])
    return gdf


def make_landcover(rng: np.random.Generator, dem: np.ndarray) -> np.ndarray:
    """Land cover on the optical grid (uint8: 1 crop, 2 tree, 3 shrub) from terrain + noise."""
    rows, cols = grid_shape(OPTICAL_RES)
    f = dem.shape[0] // rows
    elev = dem[: rows * f, : cols * f].reshape(rows, f, cols, f).mean(axis=(1, 3))
    gy, gx = np.gradient(elev)
    slope = np.hypot(gx, gy)
    score = (
        (elev - elev.mean()) / elev.std()
        + 0.8 * (slope - slope.mean()) / slope.std()
        + 0.9 * smooth_noise(rng, (rows, cols), 4)
    )
    low, high = np.quantile(score, [0.42, 0.72])
    lc = np.full((rows, cols), 3, dtype="uint8")
    lc[score < low] = 1
    lc[score >= high] = 2
    return lc


def sample_dates(n: int = 12, year: int = 2024) -> list[date]:
    """``n`` acquisition dates spread over one year (mid-month when ``n`` is 12)."""
    if n == 12:
        return [date(year, m, 15) for m in range(1, 13)]
    days = np.linspace(8, 358, n).round().astype(int)
    return [date.fromordinal(date(year, 1, 1).toordinal() + int(d) - 1) for d in days]


def ndvi_curve(kind: str, doy: float) -> float:
    """Seasonal NDVI of a land-cover class on a day of year (crop: kharif + rabi peaks)."""

    def bump(centre: float, width: float) -> float:
        d = min(abs(doy - centre), 365 - abs(doy - centre))
        return float(np.exp(-((d / width) ** 2)))

    if kind == "crop":
        return 0.18 + 0.6 * bump(250, 38) + 0.38 * bump(45, 30)
    if kind == "tree":
        return 0.74 - 0.16 * bump(135, 45)
    if kind == "shrub":
        return 0.26 + 0.24 * bump(225, 55)
    raise ValueError(f"unknown land-cover kind: {kind!r}")


def make_bands(
    rng: np.random.Generator, landcover: np.ndarray, when: date, *, cloudy: bool, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Red and NIR digital numbers (uint16, 0 = nodata) whose NDVI follows the class curves."""
    doy = when.timetuple().tm_yday
    target = np.zeros(landcover.shape)
    for code, kind in LANDCOVER_CLASSES.items():
        target[landcover == code] = ndvi_curve(kind, doy)
    ndvi = np.clip(target + rng.normal(0, 0.025, landcover.shape), -0.2, 0.95)
    nir = 0.22 + 0.18 * ndvi + rng.normal(0, 0.01, landcover.shape)
    red = nir * (1 - ndvi) / (1 + ndvi)
    red_dn = np.clip(np.round(red / scale), 1, 65535).astype("uint16")
    nir_dn = np.clip(np.round(nir / scale), 1, 65535).astype("uint16")
    if cloudy:
        cloud = smooth_noise(rng, landcover.shape, 6) > 1.3
        red_dn[cloud] = 0
        nir_dn[cloud] = 0
    return red_dn, nir_dn
