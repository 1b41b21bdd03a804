"""The one naming helper: every layer name and output path comes from (dataset, ROI, version).

Nothing else in terrapipe builds layer names or output paths by string concatenation.
``layer_name("drainage-lines", roi, version=2)`` -> ``drainage_lines_<roi_slug>_v2``.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Protocol

from terrapipe.errors import InvalidInput

__all__ = ["fold", "layer_name", "output_path", "roi_slug", "slugify"]

_NON_WORD = re.compile(r"[^a-z0-9]+")


class _HasSlug(Protocol):
    slug: str


def fold(text: str) -> str:
    """Fold text for loose comparison: accents stripped, lowercase, spaces/punctuation removed."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return _NON_WORD.sub("", ascii_text)


def slugify(text: str, *, sep: str = "_") -> str:
    """Make an ASCII, lowercase, accent-free slug (words joined by ``sep``) safe in file names."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    slug = _NON_WORD.sub(sep, ascii_text).strip(sep)
    if not slug:
        raise InvalidInput(f"cannot make a name from {text!r}: no letters or digits")
    return slug


def roi_slug(roi: _HasSlug | str) -> str:
    """The slug of an ROI (an object with ``.slug``, or a plain label)."""
    label = roi if isinstance(roi, str) else getattr(roi, "slug", None)
    if not isinstance(label, str):
        raise InvalidInput(f"not an ROI or ROI label: {roi!r}")
    return slugify(label)


def _check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"invalid layer version: {version!r} (expected an integer >= 1)")
    return version


def layer_name(dataset: str, roi: _HasSlug | str, *, version: int) -> str:
    """The layer name of a dataset for an ROI and version: ``<dataset>_<roi>_v<version>``."""
    return f"{slugify(dataset)}_{roi_slug(roi)}_v{_check_version(version)}"


def output_path(
    root: str | Path, dataset: str, roi: _HasSlug | str, version: int, ext: str
) -> Path:
    """The output file of a layer: ``<root>/<dataset>/<layer_name>.<ext>``."""
    ext = str(ext).lstrip(".").lower()
    if not ext or not ext.replace(".", "").isalnum():
        raise InvalidInput(f"invalid file extension: {ext!r}")
    name = layer_name(dataset, roi, version=version)
    return Path(root) / slugify(dataset) / f"{name}.{ext}"
