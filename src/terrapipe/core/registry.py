"""Finding workflows: built-ins, the ``terrapipe.workflows`` entry points, user modules.

Workflows are found by ``(name, version)`` so a worker on another machine runs the same
code a client submitted. A module contributes every module-level :class:`Workflow`.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from terrapipe.core.workflow import Workflow
from terrapipe.errors import InvalidInput, WorkflowNotFound

ENTRY_POINT_GROUP = "terrapipe.workflows"
BUILTIN_MODULES = (
    "terrapipe.pipelines.demo",
    "terrapipe.pipelines.drainage_lines",
    "terrapipe.pipelines.catchment_area",
    "terrapipe.pipelines.facilities_proximity",
    "terrapipe.pipelines.stream_order",
    "terrapipe.pipelines.ndvi_timeseries",
    "terrapipe.pipelines.building_blocks",
    "terrapipe.pipelines.download_crop_convert_publish",
)


def _workflows_in(obj: Any) -> list[Workflow]:
    if isinstance(obj, Workflow):
        return [obj]
    if isinstance(obj, ModuleType):
        return [v for v in vars(obj).values() if isinstance(v, Workflow)]
    if isinstance(obj, list | tuple):
        return [w for o in obj for w in _workflows_in(o)]
    if callable(obj):
        return _workflows_in(obj())
    return []


def import_user_module(spec: str) -> ModuleType:
    """Import ``spec``: a dotted module name or a path to a ``.py`` file."""
    path = Path(spec)
    if spec.endswith(".py") or path.exists():
        if not path.is_file():
            raise InvalidInput(f"workflow module file not found: {spec}")
        name = f"terrapipe_user_{abs(hash(str(path.resolve())))}"
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise InvalidInput(f"cannot load workflow module {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise InvalidInput(f"cannot import workflow module {spec}: {exc}") from exc
        return module
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        raise InvalidInput(f"cannot import workflow module {spec!r}: {exc}") from exc


class WorkflowRegistry:
    """Workflows by name and version."""

    def __init__(self) -> None:
        self._by_name: dict[str, dict[str, Workflow]] = {}

    def add(self, workflow: Workflow) -> None:
        workflow.validate()
        self._by_name.setdefault(workflow.name, {})[workflow.version] = workflow

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def all(self) -> list[Workflow]:
        return [self.get(n) for n in self.names()]

    def get(self, name: str, version: str | None = None) -> Workflow:
        versions = self._by_name.get(name)
        if not versions:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise WorkflowNotFound(
                f"unknown workflow {name!r}{hint} (see `terrapipe workflows list`)"
            )
        if version is None:
            return versions[max(versions, key=_version_sort_key)]
        if str(version) not in versions:
            raise WorkflowNotFound(
                f"workflow {name!r} has no version {version!r} (versions: "
                f"{', '.join(sorted(versions, key=_version_sort_key))})"
            )
        return versions[str(version)]


def _version_sort_key(version: str) -> tuple[Any, ...]:
    parts = []
    for part in version.replace("-", ".").split("."):
        parts.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return tuple(parts)


def load_registry(
    modules: Iterable[str] = (), *, builtins: bool = True, entry_points: bool = True
) -> WorkflowRegistry:
    """Collect workflows from built-ins, entry points and the given user modules."""
    registry = WorkflowRegistry()
    if builtins:
        for name in BUILTIN_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    continue  # not built yet
                raise
            for wf in _workflows_in(module):
                registry.add(wf)
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = ep.load()
            except Exception as exc:
                raise InvalidInput(f"cannot load workflow entry point {ep.name!r}: {exc}") from exc
            for wf in _workflows_in(loaded):
                registry.add(wf)
    for spec in modules:
        for wf in _workflows_in(import_user_module(spec)):
            registry.add(wf)
    return registry


def find_workflow(
    name: str, version: str | None = None, *, modules: Iterable[str] = ()
) -> Workflow:
    return load_registry(modules).get(name, version)
