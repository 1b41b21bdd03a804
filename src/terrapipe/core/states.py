"""Run and node states, defined once and used by the store, the CLI and every engine.

Both are ``StrEnum``: a member *is* its string (``NodeState.CACHED == "cached"``), so the
strings stored in the database, printed by the CLI and returned in JSON never change, and
rows read back as plain strings compare equal to the members.

Node states
- ``pending``: known, waiting for its upstreams; ``queued``: claimed, handed to a worker
  (distributed engines); ``running``.
- final: ``succeeded``, ``cached`` (a stored result reused), ``skipped`` (not applicable,
  not needed, or nothing to map over), ``failed``, ``upstream_failed``, ``cancelled``.

Run states: ``queued``, ``running``, then ``succeeded``, ``failed``, ``cancelled``,
``expired`` (its records were removed), or ``interrupted`` (the process that ran it died
without finishing it: ``kill -9``, a crash, a reboot; ``terrapipe runs resume`` finishes it).
"""

from __future__ import annotations

from enum import StrEnum


class NodeState(StrEnum):
    """The state of one node instance."""

    # Hash and compare as the plain string, in C: members sit in sets and dicts of strings
    # on the engine's hot path (tens of thousands of look-ups per run).
    __hash__ = str.__hash__
    __eq__ = str.__eq__

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CACHED = "cached"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELLED = "cancelled"


class RunState(StrEnum):
    """The state of a run."""

    __hash__ = str.__hash__
    __eq__ = str.__eq__

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    INTERRUPTED = "interrupted"


#: Node states after which the instance never changes again (within one attempt of a run).
NODE_FINAL = frozenset(
    {
        NodeState.SUCCEEDED,
        NodeState.FAILED,
        NodeState.SKIPPED,
        NodeState.CACHED,
        NodeState.UPSTREAM_FAILED,
        NodeState.CANCELLED,
    }
)
#: Final node states that carry a result downstream nodes read.
NODE_OK = frozenset({NodeState.SUCCEEDED, NodeState.CACHED})
#: Final node states that make every downstream node ``upstream_failed``.
NODE_BAD = frozenset({NodeState.FAILED, NodeState.UPSTREAM_FAILED, NodeState.CANCELLED})

#: Run states a run never leaves by itself (``runs resume`` may restart an interrupted,
#: cancelled or failed run).
RUN_FINAL = frozenset(
    {
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.CANCELLED,
        RunState.EXPIRED,
        RunState.INTERRUPTED,
    }
)
#: Run states in which some process is (or should be) working on the run.
RUN_ACTIVE = frozenset({RunState.QUEUED, RunState.RUNNING})


#: Stored string (or member) -> member; a dict look-up, for paths that run once per node.
NODE_STATE_OF: dict[str, NodeState] = {s.value: s for s in NodeState}
RUN_STATE_OF: dict[str, RunState] = {s.value: s for s in RunState}
#: Member (or its string) -> the plain ``str``, for database drivers: sqlite3 binds an
#: exact ``str`` directly but adapts a subclass, which costs more than the insert itself.
STATE_TEXT: dict[str, str] = {
    **{s: s.value for s in NodeState},
    **{s: s.value for s in RunState},
}


def node_state(value: str) -> NodeState:
    """The member for a stored string (a dict look-up: cheap enough for every node)."""
    return NODE_STATE_OF[value]


def run_state(value: str) -> RunState:
    return RUN_STATE_OF[value]


def parse_run_state(value: str) -> RunState:
    """``"running"`` -> ``RunState.RUNNING``; anything else is an InvalidInput naming it."""
    from terrapipe.errors import InvalidInput

    try:
        return RunState(value)
    except ValueError:
        choices = ", ".join(s.value for s in RunState)
        raise InvalidInput(f"unknown run state {value!r}; states: {choices}") from None
