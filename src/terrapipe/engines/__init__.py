"""Engines decide where and when node instances execute; all call ``execute_node``.

Engines are looked up by name: the built-ins (``local``, ``celery``) without touching package
metadata, then the ``terrapipe.engines`` entry point group, where a package registers
``name = "module:factory"`` (a class or function returning an :class:`Engine`). Nothing
here is imported by ``terrapipe.core``; ``terrapipe.runs`` joins the two.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING

from terrapipe.errors import InvalidInput

if TYPE_CHECKING:
    from terrapipe.engines.base import Engine

ENTRY_POINT_GROUP = "terrapipe.engines"
BUILTIN: dict[str, str] = {
    "local": "terrapipe.engines.local:LocalEngine",
    "celery": "terrapipe.engines.celery:CeleryEngine",
}


def _load(target: str) -> Callable[[], Engine]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def engine_names() -> list[str]:
    """Every engine that can be asked for by name: built-ins first, then entry points."""
    return [*BUILTIN, *sorted(n for n in _entry_points() if n not in BUILTIN)]


def get_engine(name: str) -> Engine:
    """A new engine instance by name; an unknown name is an InvalidInput listing the known."""
    if name in BUILTIN:
        return _load(BUILTIN[name])()
    found = _entry_points().get(name)
    if found is None:
        raise InvalidInput(f"unknown engine {name!r}; engines: {', '.join(engine_names())}")
    try:
        factory = found.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin is named, not a traceback
        raise InvalidInput(
            f"engine {name!r} ({found.value}) cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    return factory()
