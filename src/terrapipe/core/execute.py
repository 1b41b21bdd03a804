"""``execute_node``: the one function every engine calls to execute a node instance.

It asks the task whether it is applicable, computes the cache key, asks whether it is
needed, runs it with retries and a timeout, moves its artifacts into place and records the
outcome with the reason. Engines only decide *where* and *when* this runs; everything about
*what* happens lives here, above them (like httpx's policy above its transport).
"""

from __future__ import annotations

import contextlib
import threading
import traceback as tb
from pathlib import Path
from typing import Any, Protocol

from terrapipe.core.cache import cache_key as make_cache_key
from terrapipe.core.cache import explain, fingerprints, key_components, value_fingerprints
from terrapipe.core.context import Context, RunStore
from terrapipe.core.plan import Instance, RunPlan, utcnow
from terrapipe.core.states import NODE_STATE_OF
from terrapipe.core.values import encode_outputs
from terrapipe.errors import Cancelled, InvalidInput, TaskTimeout, UnstorableOutput
from terrapipe.store.artifacts import ArtifactStore, list_files, paths_under, rewrite_paths


class CacheHit(Protocol):
    """A stored result for a cache key. ``stale`` (when the runtime sets it) says why it can
    no longer be served (``output missing: x.tif``): the node reruns with that reason."""

    outputs: Any
    components: dict[str, Any]


class Runtime(Protocol):
    """What ``execute_node`` needs from the engine's view of a run (in memory or database)."""

    run_id: str
    params: dict[str, Any]
    force: bool
    plan: RunPlan
    artifacts: ArtifactStore
    cancel_event: threading.Event
    store: RunStore

    def lookup_cache(self, key: str) -> CacheHit | None: ...

    def previous_components(self, name: str, item_id: str | None) -> dict[str, Any] | None: ...

    def save_result(
        self,
        inst: Instance,
        components: dict[str, Any],
        encoded_outputs: Any,
        artifact_dir: Path | None,
        files: list[tuple[Path, int, str | None]],
    ) -> None: ...

    def record(self, inst: Instance) -> None: ...

    def progress(self, inst: Instance, done: float, total: float) -> None: ...


def _short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call_with_timeout(func: Any, ctx: Context, timeout: float | None) -> Any:
    """Run ``func(ctx)``; past ``timeout`` seconds, cancel it cooperatively and raise."""
    if not timeout:
        return func(ctx)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func(ctx)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"terrapipe-{ctx.node_key}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        ctx._cancel = threading.Event()  # the abandoned thread sees cancellation
        ctx._cancel.set()
        raise TaskTimeout(f"node {ctx.node_key} timed out after {timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def execute_node(run_id: str, node_key: str, runtime: Runtime) -> Instance:
    """Execute one node instance of a run and record the outcome; never raises for a task
    failure (the instance ends ``failed`` with the error and traceback)."""
    plan = runtime.plan
    inst = plan.instances[node_key]
    node = plan.workflow.nodes[inst.name]
    task = node.task
    inst.started_at = utcnow()

    if runtime.cancel_event.is_set():
        return _finish(runtime, inst, "cancelled", "run cancelled")

    inputs, upstream_keys, item = plan.inputs_for(inst)
    ctx = Context(
        run_id=run_id,
        node_key=node_key,
        node_name=inst.name,
        params={p: runtime.params.get(p) for p in node.params},
        inputs=inputs,
        upstream_names=frozenset(node.upstreams),
        item=item,
        map_index=inst.map_index,
        staging_root=runtime.artifacts.staging_root,
        cancel_event=runtime.cancel_event,
        on_progress=lambda done, total: runtime.progress(inst, done, total),
        store=runtime.store,
    )
    ctx.task_name, ctx.task_version = task.name, str(task.version)
    ctx.workflow_name = plan.workflow.name
    try:
        try:
            if not task.applicable(ctx):
                return _finish(runtime, inst, "skipped", "not applicable")
            input_paths = [
                Path(ctx.params[p])
                for p, spec in node.params.items()
                if spec.is_input_file and ctx.params.get(p) is not None
            ]
            input_paths += [Path(p) for p in task.inputs(ctx)]
            content = getattr(task, "fingerprint", "stat") == "content"
            input_fps = fingerprints(input_paths, content=content)
            # every other value that reaches the task and names a file: str parameters,
            # upstream outputs, the mapped item (inputs[map_over]); not upstream artifacts
            value_fingerprints(
                [
                    *(v for p, v in ctx.params.items() if node.params[p].fingerprints_values),
                    *ctx.inputs.values(),
                ],
                content=content,
                skip_prefixes=runtime.artifacts.prefixes,
                into=input_fps,
            )
            components = key_components(
                task_name=task.name,
                task_version=task.version,
                params=ctx.params,
                upstream=upstream_keys,
                item=inst.item_key,
                inputs=input_fps,
            )
        except Exception as exc:  # noqa: BLE001 - a hook failed: the node fails
            inst.attempts = 1
            return _fail(runtime, inst, exc)
        key = make_cache_key(components)
        inst.cache_key = key
        ctx.cache_key = key
        hit = runtime.lookup_cache(key)
        stale = getattr(hit, "stale", None) if hit is not None else None
        if stale:
            hit = None  # its files were deleted or changed: not a result any more
        ctx.cache_hit = hit is not None
        ctx.cached_outputs = hit.outputs if hit is not None else None

        if runtime.force:
            reason = "forced"
        else:
            try:
                needed = task.needed(ctx)
            except Exception as exc:  # noqa: BLE001
                inst.attempts = 1
                return _fail(runtime, inst, exc)
            if not needed:
                if hit is not None:
                    inst.outputs = hit.outputs
                    return _finish(runtime, inst, "cached", "unchanged")
                return _finish(runtime, inst, "skipped", "not needed")
            if hit is not None:
                reason = "needed() asked to rerun"
            elif stale:
                reason = stale
            else:
                reason = explain(runtime.previous_components(inst.name, inst.item_id), components)
        inst.reason = reason
        inst.state = "running"
        runtime.record(inst)
        return _run_with_retries(runtime, inst, node, ctx, components)
    finally:
        ctx.cleanup()


def _run_with_retries(
    runtime: Runtime, inst: Instance, node: Any, ctx: Context, components: dict[str, Any]
) -> Instance:
    task = node.task
    retries = max(0, int(node.effective_retries))
    delay = float(getattr(task, "retry_delay", 1.0))
    last_exc: BaseException | None = None
    # a distributed engine resumes at the attempt after those already made elsewhere
    for attempt in range(inst.attempts + 1, retries + 2):
        inst.attempts = attempt
        ctx.attempt = attempt
        try:
            outputs = _call_with_timeout(task.run, ctx, node.effective_timeout)
            if runtime.cancel_event.is_set():
                raise Cancelled(f"node {inst.key} was cancelled")
            staging = ctx.staging_dir
            final_dir = None
            files: list[tuple[Path, int, str | None]] = []
            if staging is not None:
                encode_outputs(outputs)  # fail before moving anything if unstorable
                final_dir = runtime.artifacts.path_for(inst.cache_key or "")
                outputs = rewrite_paths(outputs, staging, final_dir)
            _refuse_staging_paths(inst, outputs, runtime.artifacts)
            if staging is not None:
                final_dir = runtime.artifacts.commit(staging, inst.cache_key or "")
                content = getattr(node.task, "fingerprint", "stat") == "content"
                files = list_files(final_dir, digest=content)
            encoded = encode_outputs(outputs)
            inst.outputs = outputs
            try:
                inst.summary = task.summary(ctx) or {}
            except Exception:  # noqa: BLE001 - a summary must not fail a good result
                inst.summary = {}
            runtime.save_result(inst, components, encoded, final_dir, files)
            return _finish(runtime, inst, "succeeded", inst.reason or "no cached result")
        except Cancelled:
            ctx.discard_artifacts()
            return _finish(runtime, inst, "cancelled", "run cancelled")
        except Exception as exc:  # noqa: BLE001 - recorded on the node
            ctx.discard_artifacts()
            last_exc = exc
            if attempt <= retries and not isinstance(exc, UnstorableOutput):
                wait = delay * (2 ** (attempt - 1))
                inst.error = _short_error(exc)
                retry_later = getattr(runtime, "retry_later", None)
                if retry_later is not None and retry_later(inst, wait):
                    return inst  # the engine runs the next attempt in ``wait`` s, elsewhere
                runtime.record(inst)  # shows the last error while waiting to retry
                if runtime.cancel_event.wait(wait):
                    return _finish(runtime, inst, "cancelled", "run cancelled")
                continue
            break
    with contextlib.suppress(Exception):  # the original failure is what matters
        task.rollback(ctx)
    assert last_exc is not None
    return _fail(runtime, inst, last_exc)


def _refuse_staging_paths(inst: Instance, outputs: Any, artifacts: ArtifactStore) -> None:
    """Outputs must not name the staging area: it is gone after the run (a path from another
    node's staging folder, or one built by hand, is not moved with this node's artifacts)."""
    dead = paths_under(outputs, artifacts.staging_prefixes)
    if dead:
        raise UnstorableOutput(
            f"node {inst.key} returned {dead[0]!r}, a path in the staging area that is removed "
            "after the run; return paths from this node's ctx.artifact_path()"
        )


def _fail(runtime: Runtime, inst: Instance, exc: BaseException) -> Instance:
    inst.error = _short_error(exc)
    inst.error_kind = "input" if isinstance(exc, InvalidInput) else "task"
    inst.traceback = "".join(tb.format_exception(exc))
    inst.outputs = None
    return _finish(runtime, inst, "failed", inst.reason or "no cached result")


def _finish(runtime: Runtime, inst: Instance, state: str, reason: str) -> Instance:
    inst.state = NODE_STATE_OF[state]
    inst.reason = reason
    inst.finished_at = utcnow()
    if state not in ("failed",):
        inst.error = None if state != "cancelled" else inst.error
    runtime.record(inst)
    return inst
