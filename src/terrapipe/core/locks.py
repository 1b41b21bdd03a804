"""Which dataset lock a node instance asks for: one rule for every engine.

A task names a lock with its ``lock`` attribute, a format string over the run parameters
and the mapped item (``"dataset:{item}"``, ``"{dataset_id}"``). The engines take the lock
(``transfer/locks.py``: Redis across machines, lock files on one) before executing the
node, so two nodes of any runs never work on the same files at once.
"""

from __future__ import annotations

from typing import Any

from terrapipe.core.plan import Instance
from terrapipe.core.workflow import Workflow
from terrapipe.errors import InvalidInput


def lock_name(workflow: Workflow, inst: Instance, params: dict[str, Any]) -> str | None:
    """The dataset lock node instance ``inst`` asks for, or None when its task names none.

    A lock naming an unknown parameter is an :class:`InvalidInput` naming the node."""
    spec = getattr(workflow.nodes[inst.name].task, "lock", None)
    if not spec:
        return None
    try:
        return str(spec).format(**params, item=inst.item)
    except (KeyError, IndexError, AttributeError) as exc:
        raise InvalidInput(
            f"lock {spec!r} of node {inst.key} names an unknown value: {exc}"
        ) from None
