"""The plan rules: pure functions over node states, shared by every engine.

Which node instances exist, which are ready, what a node reads, what a finished node
unblocks and how a mapped node expands are decided here and nowhere else. The functions
read node states through a :class:`StateView` and return decisions; they change nothing.
The local engine's :class:`~terrapipe.core.plan.RunPlan` is such a view held in memory;
a distributed engine implements the same view over rows read inside a database
transaction and applies the same functions there.

Rules
- An unmapped node has one instance, key ``name``.
- A node with ``map_over=U`` gets one instance ``name[i]`` per item of U's output list (U
  unmapped), or per instance of U (U mapped, element-wise; instance i is ready as soon as
  ``U[i]`` is final). When U fails, is skipped or returns an empty list, the node gets one
  placeholder instance ``name`` in the matching final state.
- A node is ready when every upstream is complete; if any of them failed it becomes
  ``upstream_failed`` without running. A skipped upstream gives no output (``None``).
- A downstream of a mapped node without ``map_over`` receives the list of its outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple, Protocol

from terrapipe.core.cache import item_identity
from terrapipe.core.states import NODE_BAD, NODE_FINAL, NODE_OK, NodeState, RunState
from terrapipe.core.workflow import Workflow

Readiness = Literal["ready", "wait", "upstream_failed"]
_SKIPPED = NodeState.SKIPPED  # module constant: enum attribute look-ups cost on hot paths


class InstanceState(Protocol):
    """What the rules read of one node instance (an in-memory Instance or a stored row)."""

    key: str
    name: str
    map_index: int
    state: str
    outputs: Any
    cache_key: str | None
    item_id: str | None


class StateView(Protocol):
    """Read access to the node states of one run, as the rules need it."""

    def is_expanded(self, name: str) -> bool:
        """Whether ``name``'s instances exist (always true for an unmapped node)."""
        ...

    def node_complete(self, name: str) -> bool:
        """Expanded, and every instance of ``name`` final."""
        ...

    def node_instances(self, name: str) -> Sequence[InstanceState]:
        """The instances of ``name`` in index order (empty before expansion)."""
        ...

    def instance(self, key: str) -> InstanceState | None: ...


class NewInstance(NamedTuple):
    """An instance the rules say must exist: its key, index and mapped item (a tuple: one
    is made per mapped item, so it must be cheap)."""

    key: str
    name: str
    map_index: int = -1
    item: Any = None
    item_id: str | None = None
    item_key: Any = None


class Placeholder(NamedTuple):
    """The single final instance of a mapped node that has nothing to map over."""

    key: str
    name: str
    state: NodeState
    reason: str
    error: str | None = None


def instance_key(name: str, index: int | None = None) -> str:
    """``name`` for an unmapped instance, ``name[i]`` for item ``i`` of a mapped node."""
    return name if index is None or index < 0 else f"{name}[{index}]"


# -- what exists -----------------------------------------------------------------------
def initial_instances(workflow: Workflow, order: Iterable[str] | None = None) -> list[NewInstance]:
    """The instances that exist when a run starts: one per unmapped node."""
    names = workflow.topological_order() if order is None else order
    return [NewInstance(key=n, name=n) for n in names if workflow.nodes[n].map_over is None]


# -- how a mapped node expands ---------------------------------------------------------
def expand(
    workflow: Workflow, name: str, view: StateView
) -> list[NewInstance] | Placeholder | None:
    """The instances of mapped node ``name``, once its map source allows saying.

    ``None``: not yet (the source is not expanded, or an unmapped source is not final).
    A :class:`Placeholder` when there is nothing to map over; otherwise one instance per
    item (unmapped source) or per source instance (mapped source, element-wise).
    """
    source = workflow.nodes[name].map_over
    assert source is not None, f"{name} is not a mapped node"
    if not view.is_expanded(source):
        return None
    src_instances = view.node_instances(source)
    src_mapped = workflow.nodes[source].map_over is not None
    if src_mapped and not (len(src_instances) == 1 and src_instances[0].map_index == -1):
        return [
            NewInstance(
                key=f"{name}[{src.map_index}]",
                name=name,
                map_index=src.map_index,
                item_id=src.item_id,
            )
            for src in src_instances
        ]
    src = src_instances[0]
    if src.state not in NODE_FINAL:
        return None
    if src.state in NODE_BAD:
        return Placeholder(name, name, NodeState.UPSTREAM_FAILED, "upstream failed")
    if src.state == NodeState.SKIPPED or src.outputs is None:
        return Placeholder(
            name, name, NodeState.SKIPPED, f"nothing to map over: {source} has no output"
        )
    if not isinstance(src.outputs, list):
        error = f"map_over {source!r} returned {type(src.outputs).__name__}, not a list"
        return Placeholder(name, name, NodeState.FAILED, error, error)
    if not src.outputs:
        return Placeholder(
            name, name, NodeState.SKIPPED, f"nothing to map over: {source} returned []"
        )
    if src_mapped:  # a placeholder source that somehow holds a list: map nothing
        return Placeholder(name, name, NodeState.SKIPPED, f"nothing to map over: {source}")
    out = []
    for i, item in enumerate(src.outputs):
        ident = item_identity(item)
        out.append(
            NewInstance(
                key=f"{name}[{i}]",
                name=name,
                map_index=i,
                item=item,
                item_id=ident,
                item_key={"item": ident},
            )
        )
    return out


# -- what is ready ---------------------------------------------------------------------
def readiness(workflow: Workflow, inst: InstanceState, view: StateView) -> Readiness:
    """``ready`` when every upstream of a pending instance is final, ``upstream_failed``
    when one of them failed (or was cancelled), else ``wait``."""
    node = workflow.nodes[inst.name]
    nodes = workflow.nodes
    for up in node.upstreams:
        if up == node.map_over:
            if nodes[up].map_over is None:
                continue  # unmapped source: final before this node was expanded
            src = view.instance(f"{up}[{inst.map_index}]")
            if src is None or src.state not in NODE_FINAL:
                return "wait"
            if src.state in NODE_BAD:
                return "upstream_failed"
            continue
        if not view.node_complete(up):
            return "wait"
        for i in view.node_instances(up):
            if i.state in NODE_BAD:
                return "upstream_failed"
    return "ready"


# -- what a finished node unblocks -----------------------------------------------------
def unblocked(
    workflow: Workflow,
    downstream: Sequence[str],
    inst: InstanceState,
    node_complete: bool,
) -> list[tuple[str, int | None]]:
    """The (node, index) pairs worth re-examining once ``inst`` is final.

    ``downstream`` are the direct downstream nodes of ``inst.name``; ``node_complete``
    says whether every instance of ``inst.name`` is now final. An element-wise mapped
    downstream is unblocked item by item (index), any other only by the whole node (None).
    """
    nodes = workflow.nodes
    mapped = inst.map_index >= 0 and nodes[inst.name].map_over is not None
    seeds: list[tuple[str, int | None]] = []
    for d in downstream:
        if mapped and nodes[d].map_over == inst.name:
            seeds.append((d, inst.map_index))
        elif node_complete:
            seeds.append((d, None))
    return seeds


# -- what a node reads -----------------------------------------------------------------
def inputs_for(
    workflow: Workflow, inst: Any, view: StateView
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(inputs by upstream name, upstream keys for the cache key, item) of an instance.

    ``inst`` carries ``name``, ``map_index``, ``item`` and ``item_key`` (the mapped item
    of an instance over an unmapped source). A skipped or failed upstream reads as
    ``None`` and enters the cache key as its state; a mapped upstream reads as the list of
    its successful outputs.
    """
    node = workflow.nodes[inst.name]
    nodes = workflow.nodes
    inputs: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    item = inst.item
    for up in node.upstreams:
        mapped_up = nodes[up].map_over is not None
        if up == node.map_over and mapped_up:
            src = view.instance(f"{up}[{inst.map_index}]")
            assert src is not None
            item = None if src.state == _SKIPPED else src.outputs
            inputs[up] = item
            keys[up] = src.cache_key if src.state in NODE_OK else str(src.state)
        elif up == node.map_over:
            inputs[up] = inst.item
            keys[up] = inst.item_key
        elif mapped_up:
            ups = [i for i in view.node_instances(up) if i.state in NODE_OK]
            inputs[up] = [i.outputs for i in ups]
            keys[up] = [i.cache_key for i in ups]
        else:
            src = view.instance(up)
            assert src is not None
            ok = src.state in NODE_OK
            inputs[up] = src.outputs if ok else None
            keys[up] = src.cache_key if ok else str(src.state)
    return inputs, keys, item


# -- how the run ends ------------------------------------------------------------------
def run_outcome(states: Iterable[str]) -> RunState:
    """The run's final state from its node states: cancelled, failed or succeeded."""
    seen = set(states)
    if NodeState.CANCELLED in seen:
        return RunState.CANCELLED
    if NodeState.FAILED in seen or NodeState.UPSTREAM_FAILED in seen:
        return RunState.FAILED
    return RunState.SUCCEEDED
