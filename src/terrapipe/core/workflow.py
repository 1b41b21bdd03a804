"""Workflows: named, versioned DAGs of tasks with fan-out (``map_over``) and reduce.

``add_node`` rejects duplicate names at once; unknown upstreams and cycles are found by
:meth:`Workflow.validate`, which every run, description and registration calls, so a
workflow may name an upstream before adding it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from terrapipe.core.task import REQUIRED, FunctionTask, Param, Task
from terrapipe.core.values import coerce_param
from terrapipe.errors import ParameterError, WorkflowDefinitionError

if TYPE_CHECKING:
    from terrapipe.core.runs import Run


@dataclass
class Node:
    """One task placed in a workflow, with its upstreams and execution options."""

    name: str
    task: Task
    upstreams: tuple[str, ...] = ()
    queue: str | None = None
    retries: int | None = None
    timeout: float | None = None
    map_over: str | None = None
    params: dict[str, Param] = field(default_factory=dict)

    @property
    def effective_retries(self) -> int:
        return self.task.retries if self.retries is None else self.retries

    @property
    def effective_timeout(self) -> float | None:
        return self.task.timeout if self.timeout is None else self.timeout

    @property
    def effective_queue(self) -> str | None:
        return self.queue or self.task.queue


def _name_of(ref: Any) -> str:
    if isinstance(ref, str):
        return ref
    if isinstance(ref, Node):
        return ref.name
    if isinstance(ref, Task):
        return ref.name
    if isinstance(ref, type) and issubclass(ref, Task):
        return ref.name
    raise WorkflowDefinitionError(f"cannot use {ref!r} as an upstream: give a node, task or name")


def _as_task(obj: Any) -> Task:
    if isinstance(obj, Task):
        return obj
    if isinstance(obj, type) and issubclass(obj, Task):
        return obj()
    if callable(obj):
        return FunctionTask(obj)
    raise WorkflowDefinitionError(f"{obj!r} is not a task (a Task, Task subclass or function)")


class Workflow:
    """A named, versioned DAG of tasks."""

    def __init__(
        self,
        name: str,
        version: int | str = 1,
        category: str | None = None,
        *,
        description: str = "",
    ) -> None:
        if not name or not isinstance(name, str):
            raise WorkflowDefinitionError(f"workflow name must be a non-empty string: {name!r}")
        self.name = name
        self.version = str(version)
        self.category = category
        self.description = description
        self.nodes: dict[str, Node] = {}
        self._validated = False
        self._order: list[str] | None = None

    # -- building ----------------------------------------------------------------------
    def add_node(
        self,
        task: Any,
        upstreams: Any = None,
        *,
        name: str | None = None,
        queue: str | None = None,
        retries: int | None = None,
        timeout: float | None = None,
        map_over: Any = None,
    ) -> Node:
        """Place ``task`` in the graph after ``upstreams`` (a node, task, name or a list).

        ``map_over`` names an upstream whose output is a list: this node then runs once per
        item. A node downstream of a mapped node, without ``map_over``, gets the list of its
        outputs (reduce).
        """
        task_obj = _as_task(task)
        node_name = name or task_obj.name
        if node_name in self.nodes:
            raise WorkflowDefinitionError(
                f"workflow {self.name!r}: duplicate node name {node_name!r}; "
                "pass name=... to add the same task twice"
            )
        if upstreams is None:
            ups: tuple[str, ...] = ()
        elif isinstance(upstreams, list | tuple | set | frozenset):
            ups = tuple(_name_of(u) for u in upstreams)
        else:
            ups = (_name_of(upstreams),)
        if len(set(ups)) != len(ups):
            raise WorkflowDefinitionError(
                f"workflow {self.name!r}: node {node_name!r} lists an upstream twice: {ups}"
            )
        map_name: str | None = None
        if map_over is True:
            if len(ups) != 1:
                raise WorkflowDefinitionError(
                    f"workflow {self.name!r}: node {node_name!r}: map_over=True needs exactly "
                    f"one upstream, it has {len(ups)}; name the upstream to map over"
                )
            map_name = ups[0]
        elif map_over is not None:
            map_name = _name_of(map_over)
            if map_name not in ups:
                ups = (*ups, map_name)
        node = Node(
            name=node_name,
            task=task_obj,
            upstreams=ups,
            queue=queue,
            retries=retries,
            timeout=timeout,
            map_over=map_name,
        )
        self.nodes[node_name] = node
        self._validated = False
        self._order = None
        return node

    # -- validation --------------------------------------------------------------------
    def validate(self) -> Workflow:
        """Check upstreams exist and the graph has no cycle; resolve node parameters."""
        if self._validated:
            return self
        if not self.nodes:
            raise WorkflowDefinitionError(f"workflow {self.name!r} has no nodes")
        for node in self.nodes.values():
            missing = [u for u in node.upstreams if u not in self.nodes]
            if missing:
                known = ", ".join(sorted(self.nodes))
                raise WorkflowDefinitionError(
                    f"workflow {self.name!r}: node {node.name!r} names unknown upstream "
                    f"{missing[0]!r} (nodes: {known})"
                )
        cycle = self._find_cycle()
        if cycle:
            raise WorkflowDefinitionError(
                f"workflow {self.name!r} has a cycle: {' -> '.join(cycle)}"
            )
        for node in self.nodes.values():
            if isinstance(node.task, FunctionTask):
                node.params = node.task.param_specs(frozenset(node.upstreams))
            else:
                node.params = node.task.param_specs()
        self._check_param_types()
        self._validated = True
        return self

    def _find_cycle(self) -> list[str] | None:
        """A cycle as a list of node names (first == last), or None. Iterative (Kahn)."""
        indegree = {name: len(node.upstreams) for name, node in self.nodes.items()}
        down = self.downstream()
        queue = [n for n, d in indegree.items() if d == 0]
        while queue:
            name = queue.pop()
            for d in down[name]:
                indegree[d] -= 1
                if indegree[d] == 0:
                    queue.append(d)
        left = {n for n, d in indegree.items() if d > 0}
        if not left:
            return None
        # walk upstream inside the leftover set until a node repeats: that is a cycle
        path: list[str] = []
        seen: dict[str, int] = {}
        name = min(left)
        while name not in seen:
            seen[name] = len(path)
            path.append(name)
            name = next(u for u in self.nodes[name].upstreams if u in left)
        cycle = [*path[seen[name] :], name]
        return cycle[::-1]

    def _check_param_types(self) -> None:
        seen: dict[str, tuple[str, Param]] = {}
        for node in self.nodes.values():
            for pname, param in node.params.items():
                if pname in seen and seen[pname][1].type is not param.type:
                    other = seen[pname][0]
                    raise WorkflowDefinitionError(
                        f"workflow {self.name!r}: parameter {pname!r} has type "
                        f"{param.type!r} in node {node.name!r} but {seen[pname][1].type!r} "
                        f"in node {other!r}"
                    )
                seen.setdefault(pname, (node.name, param))

    # -- queries -----------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Param]:
        """Every run parameter any node reads (first declaration wins for defaults)."""
        self.validate()
        merged: dict[str, Param] = {}
        for node in self.nodes.values():
            for pname, param in node.params.items():
                if pname not in merged or (merged[pname].required and not param.required):
                    merged[pname] = param
        return merged

    def downstream(self) -> dict[str, list[str]]:
        """Node name -> names of the nodes that list it as an upstream."""
        down: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            for up in node.upstreams:
                down[up].append(node.name)
        return down

    def topological_order(self) -> list[str]:
        """Node names, upstreams first (stable: insertion order among equals)."""
        self.validate()
        if self._order is None:
            indegree = {name: len(node.upstreams) for name, node in self.nodes.items()}
            down = self.downstream()
            queue = deque(n for n, d in indegree.items() if d == 0)
            order: list[str] = []
            while queue:
                name = queue.popleft()
                order.append(name)
                for d in down[name]:
                    indegree[d] -= 1
                    if indegree[d] == 0:
                        queue.append(d)
            self._order = order
        return self._order

    def is_mapped(self, name: str) -> bool:
        return self.nodes[name].map_over is not None

    def resolve_params(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check and coerce run parameters: unknown, missing or mistyped ones raise."""
        given = dict(given or {})
        declared = self.params
        unknown = sorted(set(given) - set(declared))
        if unknown:
            valid = ", ".join(sorted(declared)) or "none"
            raise ParameterError(
                f"workflow {self.name!r} has no parameter {unknown[0]!r} (parameters: {valid})"
            )
        resolved: dict[str, Any] = {}
        for pname, param in declared.items():
            if pname in given:
                resolved[pname] = coerce_param(pname, given[pname], param.type)
            elif param.required:
                raise ParameterError(
                    f"workflow {self.name!r} needs parameter {pname!r}"
                    f" ({getattr(param.type, '__name__', param.type)}); pass -p {pname}=VALUE"
                )
            else:
                resolved[pname] = param.default
        return resolved

    # -- description -------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The graph as data: nodes (task, version, options), edges, params and Mermaid text."""
        self.validate()
        nodes = []
        for name in self.topological_order():
            node = self.nodes[name]
            nodes.append(
                {
                    "name": name,
                    "task": node.task.name,
                    "version": str(node.task.version),
                    "upstreams": list(node.upstreams),
                    "map_over": node.map_over,
                    "queue": node.effective_queue,
                    "retries": node.effective_retries,
                    "timeout": node.effective_timeout,
                    "params": sorted(node.params),
                }
            )
        edges = [[up, n["name"]] for n in nodes for up in n["upstreams"]]
        params = {
            pname: {
                "type": getattr(p.type, "__name__", str(p.type)),
                "required": p.required,
                "default": None if p.default is REQUIRED else p.default,
                "help": p.help,
            }
            for pname, p in self.params.items()
        }
        return {
            "name": self.name,
            "version": self.version,
            "category": self.category,
            "description": self.description,
            "nodes": nodes,
            "edges": edges,
            "params": params,
            "mermaid": self.mermaid(),
        }

    def mermaid(self) -> str:
        """The DAG as a Mermaid flowchart; mapped nodes drawn as stacks."""
        self.validate()
        ids = {name: f"n{i}" for i, name in enumerate(self.topological_order())}
        lines = ["flowchart TD"]
        for name, nid in ids.items():
            node = self.nodes[name]
            label = f"{name} v{node.task.version}"
            lines.append(f'    {nid}[["{label}"]]' if node.map_over else f'    {nid}["{label}"]')
        for name, nid in ids.items():
            node = self.nodes[name]
            for up in node.upstreams:
                arrow = "-- map -->" if up == node.map_over else "-->"
                lines.append(f"    {ids[up]} {arrow} {nid}")
        return "\n".join(lines)

    # -- running -----------------------------------------------------------------------
    def run(
        self,
        params: Mapping[str, Any] | None = None,
        engine: str = "local",
        workers: int | None = None,
        force: bool = False,
        **options: Any,
    ) -> Run:
        """Run this workflow now and return the finished run."""
        from terrapipe.runs import submit

        return submit(self, params, engine=engine, workers=workers, force=force, **options)

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} v{self.version} ({len(self.nodes)} nodes)>"
