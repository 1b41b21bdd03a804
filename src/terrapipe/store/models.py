"""Tables of the run store: runs, node instances, cache entries and artifacts.

Other areas (catalog, layers, the service) define their tables next to their code on the
same :class:`~terrapipe.store.db.Base`; the store never imports them by name: every area
lists its tables module in the ``terrapipe.tables`` entry point group, and
:func:`terrapipe.store.db.load_tables` imports them all when complete metadata is needed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from terrapipe.core.states import NODE_FINAL, NodeState, RunState
from terrapipe.store.db import Base
from terrapipe.store.types import UTCDateTime

RUN_STATES = tuple(s.value for s in RunState)
NODE_STATES = tuple(s.value for s in NodeState)
NODE_DONE_STATES = frozenset(s.value for s in NODE_FINAL)
NODES_OPEN_SQL = "state IN ('pending', 'queued', 'running')"


class RunRecord(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # newest runs of a workflow (the cache history) and newest runs overall (job list)
        sa.Index("ix_runs_workflow_created", "workflow", "created_at"),
        sa.Index("ix_runs_created", "created_at"),
        # the job runner's look for work: its queued runs, oldest first (0013)
        sa.Index(
            "ix_runs_queued_owner",
            "owner_host",
            "owner_pid",
            "created_at",
            postgresql_where=sa.text("state = 'queued'"),
            sqlite_where=sa.text("state = 'queued'"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    workflow: Mapped[str] = mapped_column(sa.String(200), index=True)
    workflow_version: Mapped[str] = mapped_column(sa.String(50))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    engine: Mapped[str] = mapped_column(sa.String(20), default="local")
    state: Mapped[str] = mapped_column(sa.String(20), index=True, default="queued")
    force: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    progress: Mapped[float] = mapped_column(sa.Float, default=0.0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the process executing the run in-process (local engine), to tell a killed run
    owner_host: Mapped[str | None] = mapped_column(sa.String(255))
    owner_pid: Mapped[int | None] = mapped_column(sa.Integer)
    owner_started: Mapped[str | None] = mapped_column(sa.String(80))
    # user modules (.py paths made absolute, or module names) the workflow was loaded from
    modules: Mapped[list[str] | None] = mapped_column(sa.JSON, nullable=True)
    # URL file inputs (name -> URL), downloaded to their parameter's path before the run
    input_urls: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    # "input" when the run failed on its input before any node ran (a URL that failed)
    error_kind: Mapped[str | None] = mapped_column(sa.String(10))


class NodeRecord(Base):
    __tablename__ = "nodes"
    __table_args__ = (
        # also the run's index (its prefix): a single node is found by (run_id, key)
        sa.UniqueConstraint("run_id", "key", name="uq_nodes_run_key"),
        # open nodes only: "is anything of this run (node) still open" reads a few entries
        # however many finished (migration 0010_core_open_nodes_index)
        sa.Index(
            "ix_nodes_open",
            "run_id",
            "name",
            postgresql_where=sa.text(NODES_OPEN_SQL),
            sqlite_where=sa.text(NODES_OPEN_SQL),
        ),
        # only nodes with a result key: most writes of a node (insert, claim, start) add
        # nothing here
        sa.Index(
            "ix_nodes_cache_key",
            "cache_key",
            postgresql_where=sa.text("cache_key IS NOT NULL"),
            sqlite_where=sa.text("cache_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(300))
    name: Mapped[str] = mapped_column(sa.String(200))
    map_index: Mapped[int] = mapped_column(sa.Integer, default=-1)
    item_id: Mapped[str | None] = mapped_column(sa.String(64))
    task_name: Mapped[str] = mapped_column(sa.String(200))
    task_version: Mapped[str] = mapped_column(sa.String(50))
    state: Mapped[str] = mapped_column(sa.String(20), default="pending")
    reason: Mapped[str | None] = mapped_column(sa.Text)
    cache_key: Mapped[str | None] = mapped_column(sa.String(64))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    error_kind: Mapped[str | None] = mapped_column(sa.String(10))
    traceback: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # distributed engines: the mapped item, who ran it (host:pid), its lease, when queued
    item: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
    worker: Mapped[str | None] = mapped_column(sa.String(255))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CacheEntry(Base):
    __tablename__ = "cache_entries"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(200), index=True)
    task_version: Mapped[str] = mapped_column(sa.String(50))
    components: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    outputs: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
    artifact_dir: Mapped[str | None] = mapped_column(sa.Text)
    run_id: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ArtifactRecord(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    cache_key: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("cache_entries.key", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(sa.Text)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    digest: Mapped[str | None] = mapped_column(sa.String(80))  # sha256:HEX, content tasks
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
