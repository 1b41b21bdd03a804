"""The instance graph of one run: which node instances exist, which are ready, and what
their inputs are. Pure and in memory; engines drive it, the run store records it.

Rules
- An unmapped node has one instance, key ``name``.
- A node with ``map_over=U`` gets one instance ``name[i]`` per item of U's output list (U
  unmapped), or per instance of U (U mapped, element-wise; instance i is ready as soon as
  ``U[i]`` is done). When U fails, is skipped or returns an empty list, the node gets one
  placeholder instance ``name`` in the matching final state.
- A node is ready when every upstream is complete; if any of them failed it becomes
  ``upstream_failed`` without running. A skipped upstream gives no output (``None``).
- A downstream of a mapped node without ``map_over`` receives the list of its outputs.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from terrapipe.core.cache import item_identity
from terrapipe.core.workflow import Workflow

DONE = frozenset({"succeeded", "failed", "skipped", "cached", "upstream_failed", "cancelled"})
OK = frozenset({"succeeded", "cached"})
BAD = frozenset({"failed", "upstream_failed", "cancelled"})


@dataclass
class Instance:
    """One execution of a node (for one item when mapped) and its outcome."""

    key: str
    name: str
    map_index: int = -1
    item: Any = None
    item_id: str | None = None
    item_key: Any = None
    state: str = "pending"
    reason: str | None = None
    cache_key: str | None = None
    outputs: Any = None
    attempts: int = 0
    error: str | None = None
    error_kind: str | None = None  # "input" (bad input: exit 2) or "task" (the task broke)
    traceback: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    progress: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in DONE


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RunPlan:
    """Expands a workflow into instances as upstream results arrive.

    Work per finished instance is proportional to its direct downstream, not to the graph,
    so a 10,000-node run stays linear.
    """

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow.validate()
        self.order = workflow.topological_order()
        self.down = workflow.downstream()
        self.instances: dict[str, Instance] = {}
        self.by_node: dict[str, list[str]] = {}  # node name -> instance keys (in index order)
        self.expanded: set[str] = set()
        self.remaining: dict[str, int] = dict.fromkeys(workflow.nodes, 0)
        self.n_done = 0
        self._submitted: set[str] = set()
        self._counted: set[str] = set()
        self.fresh: list[Instance] = []  # instances created since the engine last looked
        for name in self.order:
            if not workflow.is_mapped(name):
                self._add(Instance(key=name, name=name))
                self.expanded.add(name)

    # -- bookkeeping -------------------------------------------------------------------
    def _add(self, inst: Instance) -> Instance:
        self.instances[inst.key] = inst
        self.fresh.append(inst)
        self.by_node.setdefault(inst.name, []).append(inst.key)
        self.remaining[inst.name] += 1
        return inst

    def _count_done(self, inst: Instance) -> bool:
        if inst.key in self._counted:
            return False
        self._counted.add(inst.key)
        self.remaining[inst.name] -= 1
        self.n_done += 1
        return True

    def node_complete(self, name: str) -> bool:
        return name in self.expanded and self.remaining[name] == 0

    def node_instances(self, name: str) -> list[Instance]:
        return [self.instances[k] for k in self.by_node.get(name, [])]

    @property
    def finished(self) -> bool:
        return len(self.expanded) == len(self.workflow.nodes) and self.n_done == len(self.instances)

    # -- driving -----------------------------------------------------------------------
    def start(self) -> list[Instance]:
        """Instances ready at the start of the run."""
        return self._advance([(name, None) for name in self.order])

    def on_done(self, key: str) -> list[Instance]:
        """Record that an instance finished; return the instances that became ready."""
        inst = self.instances[key]
        if not self._count_done(inst):
            return []
        return self._advance(self._downstream_seeds(inst))

    def _downstream_seeds(self, inst: Instance) -> list[tuple[str, int | None]]:
        seeds: list[tuple[str, int | None]] = []
        mapped = self.workflow.is_mapped(inst.name) and inst.map_index >= 0
        complete = self.node_complete(inst.name)
        for d in self.down[inst.name]:
            if mapped and self.workflow.nodes[d].map_over == inst.name:
                seeds.append((d, inst.map_index))
            elif complete:
                seeds.append((d, None))
        return seeds

    def _advance(self, seeds: list[tuple[str, int | None]]) -> list[Instance]:
        ready: list[Instance] = []
        queue = deque(seeds)
        while queue:
            name, index = queue.popleft()
            if name not in self.expanded:
                if not self._try_expand(name):
                    continue
                index = None
                for inst in self.node_instances(name):
                    if inst.done and self._count_done(inst):
                        queue.extend(self._downstream_seeds(inst))
            keys = [f"{name}[{index}]"] if index is not None else self.by_node.get(name, [])
            for key in keys:
                inst = self.instances.get(key)
                if inst is None or inst.state != "pending" or key in self._submitted:
                    continue
                verdict = self._readiness(inst)
                if verdict == "ready":
                    self._submitted.add(key)
                    ready.append(inst)
                elif verdict == "upstream_failed":
                    self._finish(inst, "upstream_failed", "upstream failed")
                    self._count_done(inst)
                    queue.extend(self._downstream_seeds(inst))
        return ready

    def _finish(self, inst: Instance, state: str, reason: str) -> None:
        inst.state = state
        inst.reason = reason
        inst.finished_at = utcnow()
        self.fresh.append(inst)  # changed by the plan itself: the engine records it

    def _try_expand(self, name: str) -> bool:
        node = self.workflow.nodes[name]
        source = node.map_over
        assert source is not None
        if source not in self.expanded:
            return False
        src_instances = self.node_instances(source)
        src_mapped = self.workflow.is_mapped(source)
        placeholder_state = None
        if not src_mapped or (len(src_instances) == 1 and src_instances[0].map_index == -1):
            src = src_instances[0]
            if not src.done:
                return False
            if src.state in BAD:
                placeholder_state = ("upstream_failed", "upstream failed")
            elif src.state == "skipped" or src.outputs is None:
                placeholder_state = ("skipped", f"nothing to map over: {source} has no output")
            elif not isinstance(src.outputs, list):
                placeholder_state = (
                    "failed",
                    f"map_over {source!r} returned {type(src.outputs).__name__}, not a list",
                )
            elif not src.outputs:
                placeholder_state = ("skipped", f"nothing to map over: {source} returned []")
            if placeholder_state is None and not src_mapped:
                for i, item in enumerate(src.outputs):
                    ident = item_identity(item)
                    self._add(
                        Instance(
                            key=f"{name}[{i}]",
                            name=name,
                            map_index=i,
                            item=item,
                            item_id=ident,
                            item_key={"item": ident},
                        )
                    )
                self.expanded.add(name)
                return True
        if placeholder_state is not None:
            inst = self._add(Instance(key=name, name=name))
            self._finish(inst, *placeholder_state)
            if placeholder_state[0] == "failed":
                inst.error = placeholder_state[1]
            self.expanded.add(name)
            return True
        # element-wise over a mapped source: one instance per source instance
        for src in src_instances:
            self._add(
                Instance(
                    key=f"{name}[{src.map_index}]",
                    name=name,
                    map_index=src.map_index,
                    item_id=src.item_id,
                )
            )
        self.expanded.add(name)
        return True

    def _readiness(self, inst: Instance) -> str:
        node = self.workflow.nodes[inst.name]
        for up in node.upstreams:
            if up == node.map_over and self.workflow.is_mapped(up):
                src = self.instances.get(f"{up}[{inst.map_index}]")
                if src is None or not src.done:
                    return "wait"
                if src.state in BAD:
                    return "upstream_failed"
                continue
            if up == node.map_over:
                continue  # unmapped source: already done when we were expanded
            if not self.node_complete(up):
                return "wait"
            if any(i.state in BAD for i in self.node_instances(up)):
                return "upstream_failed"
        return "ready"

    def inputs_for(self, inst: Instance) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """(inputs by upstream name, upstream keys for the cache key, item) of an instance."""
        node = self.workflow.nodes[inst.name]
        inputs: dict[str, Any] = {}
        keys: dict[str, Any] = {}
        item = inst.item
        for up in node.upstreams:
            mapped_up = self.workflow.is_mapped(up)
            if up == node.map_over and mapped_up:
                src = self.instances[f"{up}[{inst.map_index}]"]
                item = None if src.state == "skipped" else src.outputs
                inputs[up] = item
                keys[up] = src.cache_key if src.state in OK else src.state
            elif up == node.map_over:
                inputs[up] = inst.item
                keys[up] = inst.item_key
            elif mapped_up:
                ups = [i for i in self.node_instances(up) if i.state in OK]
                inputs[up] = [i.outputs for i in ups]
                keys[up] = [i.cache_key for i in ups]
            else:
                src = self.instances[up]
                inputs[up] = src.outputs if src.state in OK else None
                keys[up] = src.cache_key if src.state in OK else src.state
        inst.item = item
        return inputs, keys, item

    def cancel_pending(self, reason: str = "run cancelled") -> list[Instance]:
        """Mark every instance that has not finished as cancelled (and unexpanded nodes)."""
        changed = []
        for name in self.workflow.nodes:
            if name not in self.expanded:
                changed.append(self._add(Instance(key=name, name=name)))
                self.expanded.add(name)
        for inst in self.instances.values():
            if not inst.done:
                self._finish(inst, "cancelled", reason)
                changed.append(inst)
            self._count_done(inst)
        return changed

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for inst in self.instances.values():
            out[inst.state] = out.get(inst.state, 0) + 1
        return out

    def final_state(self) -> str:
        states = {i.state for i in self.instances.values()}
        if "cancelled" in states:
            return "cancelled"
        if states & {"failed", "upstream_failed"}:
            return "failed"
        return "succeeded"
