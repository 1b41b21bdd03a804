"""Tasks: a unit of work with a name, a version, parameters and the hooks the executor calls.

A task decides whether it is *applicable* to its inputs and whether it is *needed* (by
default: no cached result for its cache key), then *runs*. Bump ``version`` when the logic
changes: cached results of the old version stop matching and the node reruns.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, get_type_hints

if TYPE_CHECKING:
    from terrapipe.core.context import Context


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    """A run parameter a task reads: its type (for coercion), default and help text.

    A ``Path`` parameter names an input file or folder: its fingerprint (a folder: every
    file below it) enters the cache key. Any other value that names an existing file (a
    ``str`` parameter like ``"data/a.tif"``) enters it by the file's own fingerprint (a
    folder named in a value does not). ``fingerprint=False`` leaves the parameter's files
    out of the key: for a destination file the task writes itself, which would otherwise
    look changed on every run.
    """

    type: Any = str
    default: Any = REQUIRED
    help: str = ""
    fingerprint: bool = True

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def is_input_file(self) -> bool:
        return self.type is Path and self.fingerprint

    @property
    def fingerprints_values(self) -> bool:
        """Whether files named inside this parameter's value enter the cache key (by the
        value's fingerprint; a ``Path`` parameter is fingerprinted whole instead)."""
        return self.fingerprint and self.type is not Path


def as_param(spec: Param | type | Any) -> Param:
    """Normalise a parameter declaration (a type, or a Param) to a Param."""
    return spec if isinstance(spec, Param) else Param(type=spec)


FINGERPRINT_MODES = ("stat", "content")


def check_fingerprint(mode: str, task_name: str) -> str:
    """The task's fingerprint mode, or a WorkflowDefinitionError naming the task."""
    if mode not in FINGERPRINT_MODES:
        from terrapipe.errors import WorkflowDefinitionError

        raise WorkflowDefinitionError(
            f"task {task_name!r}: fingerprint={mode!r}; use one of {', '.join(FINGERPRINT_MODES)}"
        )
    return mode


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).replace("_", "-").lower()


class Task:
    """Base class of every task. Subclass it and override :meth:`run` (and, if needed, the
    other hooks); or decorate a plain function with :func:`task`."""

    name: ClassVar[str] = ""
    version: ClassVar[int | str] = 1
    retries: ClassVar[int] = 0
    retry_delay: ClassVar[float] = 1.0
    timeout: ClassVar[float | None] = None
    queue: ClassVar[str | None] = None
    fingerprint: ClassVar[str] = "stat"  # or "content": input files (and artifacts) by hash
    params: ClassVar[Mapping[str, Param | type]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = _kebab(cls.__name__)
        if "fingerprint" in cls.__dict__:
            check_fingerprint(cls.fingerprint, cls.name)

    # -- hooks -------------------------------------------------------------------------
    def applicable(self, ctx: Context) -> bool:
        """Does this task apply to these inputs at all? False gives the node ``skipped``."""
        return True

    def needed(self, ctx: Context) -> bool:
        """Is there work to do? Default: no cached result for this cache key."""
        return not ctx.cache_hit

    def run(self, ctx: Context) -> Any:
        """Do the work; return JSON-able outputs and/or paths from ``ctx.artifact_path``."""
        raise NotImplementedError(f"task {self.name!r} does not implement run()")

    def summary(self, ctx: Context) -> dict[str, Any]:
        """What to show a person about the result (results page, CLI)."""
        return {}

    def rollback(self, ctx: Context) -> None:
        """Undo side effects of a failed run (called after the last failed attempt)."""

    def inputs(self, ctx: Context) -> list[Path]:
        """Extra input files whose fingerprints enter the cache key (beyond Path params)."""
        return []

    # -- description -------------------------------------------------------------------
    def param_specs(self) -> dict[str, Param]:
        return {name: as_param(spec) for name, spec in self.params.items()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} v{self.version}>"


RESERVED_ARGS = frozenset({"ctx", "item"})


class FunctionTask(Task):
    """A task made from a plain function by :func:`task`.

    Arguments are filled by name: ``ctx`` gets the context, ``item`` the mapped item, an
    argument named after an upstream node gets that node's output, every other argument is
    a run parameter (typed by its annotation or default).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        version: int | str = 1,
        retries: int = 0,
        retry_delay: float = 1.0,
        timeout: float | None = None,
        queue: str | None = None,
        applicable: Callable[..., bool] | None = None,
        fingerprint: str = "stat",
    ) -> None:
        self.func = func
        self.fingerprint = check_fingerprint(fingerprint, name or func.__name__)
        self.name = name or func.__name__
        self.version = version
        self.retries = retries
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.queue = queue
        self._applicable = applicable
        self.signature = inspect.signature(func)
        try:
            hints = get_type_hints(func)
        except Exception:  # unresolvable annotations: fall back to defaults' types
            hints = {}
        self._arg_params: dict[str, Param] = {}
        for arg in self.signature.parameters.values():
            if arg.name in RESERVED_ARGS or arg.kind in (arg.VAR_POSITIONAL, arg.VAR_KEYWORD):
                continue
            default = REQUIRED if arg.default is inspect.Parameter.empty else arg.default
            kind = hints.get(arg.name)
            if kind is None:
                kind = type(default) if default not in (REQUIRED, None) else Any
            self._arg_params[arg.name] = Param(type=kind, default=default)
        self.__doc__ = func.__doc__

    @property
    def params(self) -> dict[str, Param]:  # type: ignore[override]
        return self._arg_params

    def param_specs(self, upstream_names: frozenset[str] = frozenset()) -> dict[str, Param]:
        return {n: p for n, p in self._arg_params.items() if n not in upstream_names}

    def applicable(self, ctx: Context) -> bool:
        return True if self._applicable is None else bool(self._applicable(ctx))

    def run(self, ctx: Context) -> Any:
        kwargs: dict[str, Any] = {}
        for arg in self.signature.parameters:
            if arg == "ctx":
                kwargs[arg] = ctx
            elif arg == "item":
                kwargs[arg] = ctx.item
            elif arg in ctx.upstream_names:
                kwargs[arg] = ctx.inputs.get(arg)
            elif arg in ctx.params:
                kwargs[arg] = ctx.params[arg]
        return self.func(**kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling the decorated function still calls the plain function."""
        return self.func(*args, **kwargs)


def task(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    version: int | str = 1,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    queue: str | None = None,
    applicable: Callable[..., bool] | None = None,
    fingerprint: str = "stat",
) -> Any:
    """Make a plain function a task: ``@task`` or ``@task(version=2, retries=3)``;
    ``fingerprint="content"`` fingerprints its input files (and artifacts) by content."""

    def wrap(f: Callable[..., Any]) -> FunctionTask:
        return FunctionTask(
            f,
            name=name,
            version=version,
            retries=retries,
            retry_delay=retry_delay,
            timeout=timeout,
            queue=queue,
            applicable=applicable,
            fingerprint=fingerprint,
        )

    return wrap(func) if func is not None else wrap
