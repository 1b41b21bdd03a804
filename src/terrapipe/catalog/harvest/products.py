"""Well-known product names (Landsat, Sentinel-1/2) and dates found in file names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_LANDSAT = re.compile(
    r"^L(?P<sensor>[COTEM])(?P<sat>0[1-9])_(?P<level>[A-Z0-9]{4})_(?P<path>\d{3})(?P<row>\d{3})_"
    r"(?P<acq>\d{8})_(?P<proc>\d{8})_(?P<coll>\d{2})_(?P<tier>T1|T2|RT)",
    re.IGNORECASE,
)
_SENTINEL2 = re.compile(
    r"^S2(?P<unit>[A-D])_MSI(?P<level>L1C|L2A)_(?P<acq>\d{8}T\d{6})_N\d{4}_R(?P<orbit>\d{3})_"
    r"T(?P<tile>\d{2}[A-Z]{3})_\d{8}T\d{6}",
    re.IGNORECASE,
)
_SENTINEL2_GRANULE = re.compile(r"^T(?P<tile>\d{2}[A-Z]{3})_(?P<acq>\d{8}T\d{6})_", re.IGNORECASE)
_SENTINEL1 = re.compile(
    r"^S1(?P<unit>[A-D])_(?P<mode>IW|EW|SM|WV|S[1-6])_(?P<type>GRD|SLC|OCN|RAW)\w?_\w{4}_"
    r"(?P<acq>\d{8}T\d{6})_",
    re.IGNORECASE,
)
_DATE_IN_NAME = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})(?P<sep>-?)(?P<m>\d{2})(?P=sep)(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2}))?(?!\d)"
)
_LANDSAT_SENSORS = {"C": "oli-tirs", "O": "oli", "E": "etm+", "M": "mss"}


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """What a product name tells: family (collection default), platform, instrument, time."""

    family: str
    product_id: str
    platform: str | None = None
    instrument: str | None = None
    provider: str | None = None
    acquired: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)


def parse_product_name(name: str) -> ProductInfo | None:
    """Landsat or Sentinel-1/2 product information from a file or product name, if any."""
    if m := _LANDSAT.match(name):
        sat, sensor = m["sat"], m["sensor"].upper()
        instrument = ("tirs" if sat in ("08", "09") else "tm") if sensor == "T" else None
        return ProductInfo(
            family="landsat",
            product_id=m.group(0).upper(),
            platform=f"landsat-{int(sat)}",
            instrument=instrument or _LANDSAT_SENSORS[sensor],
            provider="USGS",
            acquired=_stamp(m["acq"]),
            properties={
                "processing_level": m["level"].upper(),
                "wrs_path": m["path"],
                "wrs_row": m["row"],
                "collection_number": m["coll"],
                "tier": m["tier"].upper(),
            },
        )
    if m := _SENTINEL2.match(name):
        return ProductInfo(
            family="sentinel-2",
            product_id=m.group(0).upper(),
            platform=f"sentinel-2{m['unit'].lower()}",
            instrument="msi",
            provider="ESA",
            acquired=_stamp(m["acq"]),
            properties={
                "processing_level": m["level"].upper(),
                "relative_orbit": int(m["orbit"]),
                "mgrs_tile": m["tile"].upper(),
            },
        )
    if m := _SENTINEL2_GRANULE.match(name):
        return ProductInfo(
            family="sentinel-2",
            product_id=m.group(0).rstrip("_").upper(),
            platform="sentinel-2",
            instrument="msi",
            provider="ESA",
            acquired=_stamp(m["acq"]),
            properties={"mgrs_tile": m["tile"].upper()},
        )
    if m := _SENTINEL1.match(name):
        return ProductInfo(
            family="sentinel-1",
            product_id=m.group(0).rstrip("_").upper(),
            platform=f"sentinel-1{m['unit'].lower()}",
            instrument="c-sar",
            provider="ESA",
            acquired=_stamp(m["acq"]),
            properties={"mode": m["mode"].upper(), "product_type": m["type"].upper()},
        )
    return None


def date_from_name(name: str) -> datetime | None:
    """The first valid ``YYYYMMDD`` / ``YYYY-MM-DD`` (optionally ``THHMMSS``) in a name, UTC."""
    for m in _DATE_IN_NAME.finditer(name):
        try:
            return datetime(
                int(m["y"]),
                int(m["m"]),
                int(m["d"]),
                int(m["H"] or 0),
                int(m["M"] or 0),
                int(m["S"] or 0),
                tzinfo=UTC,
            )
        except ValueError:
            continue
    return None


def _stamp(text: str) -> datetime | None:
    return date_from_name(text)
