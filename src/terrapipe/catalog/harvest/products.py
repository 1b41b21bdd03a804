"""Well-known product names (Landsat, Sentinel-1/2) and dates found in file names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Collection 1/2 product ids: LXSS_LLLL_PPPRRR_YYYYMMDD[_yyyymmdd]_CC_TX[_BAND].
# The processing date is often dropped in shortened names (LE07_L2SP_225078_20110306_02_T1_B1);
# the band/file suffix (B1, SR_B4, ST_B10, QA_PIXEL, MTL) is kept as ``band``.
_LANDSAT = re.compile(
    r"^L(?P<sensor>[COTEM])(?P<sat>0[1-9])_(?P<level>L[12][A-Z0-9]{2})_(?P<path>\d{3})(?P<row>\d{3})"
    r"_(?P<acq>\d{8})(?:_(?P<proc>\d{8}))?_(?P<coll>\d{2})_(?P<tier>T1|T2|RT)"
    r"(?:_(?P<band>\w[\w-]*))?$",
    re.IGNORECASE,
)
# Pre-collection scene ids: LXSPPPRRRYYYYDDDGSIVV (LC80440342016259LGN00).
_LANDSAT_SCENE = re.compile(
    r"^L(?P<sensor>[COTEM])(?P<sat>[1-9])(?P<path>\d{3})(?P<row>\d{3})(?P<year>\d{4})"
    r"(?P<doy>\d{3})(?P<station>[A-Z]{3})(?P<version>\d{2})(?:_(?P<band>\w[\w-]*))?$",
    re.IGNORECASE,
)
# Which sensor letters each Landsat mission flew: a name outside this is not Landsat.
_LANDSAT_MISSIONS = {
    1: "M",
    2: "M",
    3: "M",
    4: "MT",
    5: "MT",
    7: "E",
    8: "COT",
    9: "COT",
}
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
    if info := _landsat(name):
        return info
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


def _landsat(name: str) -> ProductInfo | None:
    """A Landsat product or scene id (Collection 1/2 or pre-collection), if ``name`` is one."""
    properties: dict[str, Any]
    if m := _LANDSAT.match(name):
        acquired = _stamp(m["acq"])
        product_id = name[: m.end("tier")].upper()
        properties = {
            "processing_level": m["level"].upper(),
            "wrs_path": m["path"],
            "wrs_row": m["row"],
            "collection_number": m["coll"],
            "tier": m["tier"].upper(),
        }
    elif m := _LANDSAT_SCENE.match(name):
        try:
            acquired = datetime.strptime(m["year"] + m["doy"], "%Y%j").replace(tzinfo=UTC)
        except ValueError:
            return None
        product_id = name[: m.end("version")].upper()
        properties = {"wrs_path": m["path"], "wrs_row": m["row"], "station": m["station"].upper()}
    else:
        return None
    sat, sensor = int(m["sat"]), m["sensor"].upper()
    if sensor not in _LANDSAT_MISSIONS.get(sat, "") or acquired is None:
        return None
    if m["band"]:
        properties["band"] = m["band"].upper()
    instrument = ("tirs" if sat >= 8 else "tm") if sensor == "T" else _LANDSAT_SENSORS[sensor]
    return ProductInfo(
        family="landsat",
        product_id=product_id,
        platform=f"landsat-{sat}",
        instrument=instrument,
        provider="USGS",
        acquired=acquired,
        properties=properties,
    )


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
