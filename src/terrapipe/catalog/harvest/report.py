"""Harvest bookkeeping: failed items and the added/updated/failed report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Failure:
    """An item that could not be harvested; kept in the catalog with its error."""

    entry_id: str
    error: str
    source: dict[str, Any] | None = None
    title: str | None = None
    collection: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The failure as a JSON-ready mapping."""
        return {"entry_id": self.entry_id, "error": self.error, "source": self.source}


@dataclass(slots=True)
class HarvestReport:
    """How a harvest went: counts and the failures (each also stored in the catalog)."""

    source: str
    kind: str
    added: int = 0
    updated: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.added + self.updated + self.failed

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready mapping."""
        return {
            "source": self.source,
            "kind": self.kind,
            "added": self.added,
            "updated": self.updated,
            "failed": self.failed,
            "failures": [f.to_dict() for f in self.failures],
        }
