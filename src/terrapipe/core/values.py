"""Values that cross the store: canonical JSON for hashing, output encoding, param coercion.

Pure functions, no I/O: a cache key must come out the same on every machine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from terrapipe.errors import ParameterError, UnstorableOutput

PATH_TAG = "$path"


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, paths and dates as tagged strings."""
    return json.dumps(_plain(value, "value"), sort_keys=True, separators=(",", ":"))


def stable_hash(value: Any, *, length: int = 40) -> str:
    """SHA-256 of the canonical JSON of ``value``, as hex (``length`` characters)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def encode_outputs(value: Any) -> Any:
    """Turn task outputs into JSON-able data (paths tagged), or raise naming the bad part."""
    return _plain(value, "outputs")


def decode_outputs(value: Any) -> Any:
    """Inverse of :func:`encode_outputs`: tagged paths become :class:`Path` again."""
    if isinstance(value, dict):
        if len(value) == 1 and PATH_TAG in value:
            return Path(value[PATH_TAG])
        return {k: decode_outputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_outputs(v) for v in value]
    return value


def outputs_for_humans(value: Any) -> Any:
    """Decoded outputs with every path as an absolute string (for --json and the API)."""
    if isinstance(value, dict):
        if len(value) == 1 and PATH_TAG in value:
            return str(Path(value[PATH_TAG]).resolve())
        return {k: outputs_for_humans(v) for k, v in value.items()}
    if isinstance(value, list):
        return [outputs_for_humans(v) for v in value]
    return value


_SCALARS = (str, int, bool, type(None))


def _plain(value: Any, where: str) -> Any:
    kind = type(value)
    if kind in _SCALARS:  # exact types first: the common case, and cheap
        return value
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise UnstorableOutput(
                    f"{where} has a key of type {type(k).__name__} ({k!r}); keys must be strings"
                )
            out[k] = v if type(v) in _SCALARS else _plain(v, f"{where}[{k!r}]")
        return out
    if kind is list or kind is tuple:
        return [
            v if type(v) in _SCALARS else _plain(v, f"{where}[{i}]") for i, v in enumerate(value)
        ]
    return _plain_slow(value, where)


def _plain_slow(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)
        return value
    if isinstance(value, PurePath):
        return {PATH_TAG: str(value)}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _plain(dict(value), where)
    if isinstance(value, list | tuple):
        return _plain(list(value), where)
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return _plain(value.item(), where)  # numpy scalar
    raise UnstorableOutput(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which cannot be "
        "stored; return JSON-able values (numbers, strings, lists, dicts) or paths from "
        "ctx.artifact_path()"
    )


_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def coerce_param(name: str, value: Any, kind: Any) -> Any:
    """Convert a parameter value (often a CLI string) to its declared type, or raise."""
    if kind is Any or kind is None or value is None:
        return value
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is str:
            if not isinstance(value, str | int | float):
                raise ValueError
            return str(value)
        if kind is Path:
            if not isinstance(value, str | PurePath):
                raise ValueError
            return Path(value).expanduser()
        if kind is dt.date:
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if kind is dt.datetime:
            if isinstance(value, dt.datetime):
                return value
            return dt.datetime.fromisoformat(str(value))
        if kind is list:
            if isinstance(value, list | tuple):
                return list(value)
            text = str(value).strip()
            if text.startswith("["):
                return list(json.loads(text))
            return [part.strip() for part in text.split(",") if part.strip()]
        if kind is dict:
            if isinstance(value, Mapping):
                return dict(value)
            return dict(json.loads(str(value)))
    except (ValueError, TypeError, json.JSONDecodeError):
        type_name = getattr(kind, "__name__", str(kind))
        raise ParameterError(f"parameter {name!r}: {value!r} is not a valid {type_name}") from None
    return value
