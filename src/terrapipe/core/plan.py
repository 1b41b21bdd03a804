"""The instance graph of one run held in memory: the local engine's view of node states.

:class:`RunPlan` keeps every node instance of a run and applies the plan rules of
:mod:`terrapipe.core.rules` (what exists, what is ready, what a node reads, what a finished
node unblocks, how a mapped node expands) as results arrive. The rules are pure; this
class only holds the states and the bookkeeping that makes them cheap to apply.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from terrapipe.core import rules
from terrapipe.core.states import NODE_BAD, NODE_FINAL, NODE_OK, NodeState, RunState
from terrapipe.core.workflow import Workflow

_PENDING = NodeState.PENDING  # a module constant: enum attribute look-ups cost on hot paths

# Kept for callers of the first wave; the sets live in core.states.
DONE = NODE_FINAL
OK = NODE_OK
BAD = NODE_BAD


@dataclass
class Instance:
    """One execution of a node (for one item when mapped) and its outcome."""

    key: str
    name: str
    map_index: int = -1
    item: Any = None
    item_id: str | None = None
    item_key: Any = None
    state: str = _PENDING
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
        return self.state in NODE_FINAL


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RunPlan:
    """Expands a workflow into instances as upstream results arrive (a
    :class:`~terrapipe.core.rules.StateView` in memory).

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
        for new in rules.initial_instances(workflow, self.order):
            self._add(Instance(key=new.key, name=new.name))
            self.expanded.add(new.name)

    # -- the StateView the rules read ----------------------------------------------------
    def is_expanded(self, name: str) -> bool:
        return name in self.expanded

    def node_complete(self, name: str) -> bool:
        return name in self.expanded and self.remaining[name] == 0

    def node_instances(self, name: str) -> list[Instance]:
        instances = self.instances
        return [instances[k] for k in self.by_node.get(name, ())]

    def instance(self, key: str) -> Instance | None:
        return self.instances.get(key)

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
        return self._advance(self._unblocked(inst))

    def _unblocked(self, inst: Instance) -> list[tuple[str, int | None]]:
        name = inst.name
        complete = name in self.expanded and self.remaining[name] == 0
        return rules.unblocked(self.workflow, self.down[name], inst, complete)

    def _advance(self, seeds: list[tuple[str, int | None]]) -> list[Instance]:
        ready: list[Instance] = []
        queue = deque(seeds)
        workflow = self.workflow
        instances = self.instances
        submitted = self._submitted
        while queue:
            name, index = queue.popleft()
            if name not in self.expanded:
                if not self._expand(name):
                    continue
                index = None
                for inst in self.node_instances(name):
                    if inst.done and self._count_done(inst):
                        queue.extend(self._unblocked(inst))
            keys = [f"{name}[{index}]"] if index is not None else self.by_node.get(name, ())
            for key in keys:
                inst = instances.get(key)
                if inst is None or inst.state != _PENDING or key in submitted:
                    continue
                verdict = rules.readiness(workflow, inst, self)
                if verdict == "ready":
                    submitted.add(key)
                    ready.append(inst)
                elif verdict == "upstream_failed":
                    self._finish(inst, NodeState.UPSTREAM_FAILED, "upstream failed")
                    self._count_done(inst)
                    queue.extend(self._unblocked(inst))
        return ready

    def _finish(self, inst: Instance, state: str, reason: str) -> None:
        inst.state = state
        inst.reason = reason
        inst.finished_at = utcnow()
        self.fresh.append(inst)  # changed by the plan itself: the engine records it

    def _expand(self, name: str) -> bool:
        """Create the instances of mapped node ``name`` if the rules can say which."""
        expansion = rules.expand(self.workflow, name, self)
        if expansion is None:
            return False
        if isinstance(expansion, rules.Placeholder):
            inst = self._add(Instance(key=expansion.key, name=name))
            self._finish(inst, expansion.state, expansion.reason)
            inst.error = expansion.error
        else:
            for new in expansion:
                self._add(
                    Instance(
                        key=new.key,
                        name=name,
                        map_index=new.map_index,
                        item=new.item,
                        item_id=new.item_id,
                        item_key=new.item_key,
                    )
                )
        self.expanded.add(name)
        return True

    def inputs_for(self, inst: Instance) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """(inputs by upstream name, upstream keys for the cache key, item) of an instance."""
        inputs, keys, item = rules.inputs_for(self.workflow, inst, self)
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
                self._finish(inst, NodeState.CANCELLED, reason)
                changed.append(inst)
            self._count_done(inst)
        return changed

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for inst in self.instances.values():
            out[inst.state] = out.get(inst.state, 0) + 1
        return out

    def final_state(self) -> RunState:
        return rules.run_outcome(i.state for i in self.instances.values())
