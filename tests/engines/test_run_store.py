"""Tasks use the run's store (ctx.db, ctx.settings): ``submit(db=..., settings=...)`` writes
every record and file there and nothing to the default database or home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from terrapipe import Workflow, submit, task
from terrapipe.publish.layers import list_layers
from terrapipe.settings import Settings
from terrapipe.store.db import Database

BLOCK = "Narmada Pradesh/Sonpur/Amarkantak"


def test_builtin_workflow_publishes_into_the_given_store(tmp_path: Path, tp_home: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    settings = Settings(home=elsewhere)
    db = Database(f"sqlite:///{tmp_path / 'explicit.db'}")
    try:
        run = submit("catchment-area", {"roi": BLOCK}, settings=settings, db=db)
        assert run.state == "succeeded", run.error
        published = run.nodes["publish"].outputs["layers"]
        assert published
        # the layer records are in the given database, the STAC items under its home
        assert sorted(la.name for la in list_layers(db)) == sorted(published)
        for href in run.nodes["publish"].outputs["stac_items"]:
            assert Path(href).is_relative_to(elsewhere)
            assert json.loads(Path(href).read_text())["type"] == "Feature"
        # the sample region (default `data`) was generated under the run's home too
        assert (elsewhere / "sample").is_dir()
        # a cached rerun checks its layers in the same store: still there, nothing to redo
        again = submit("catchment-area", {"roi": BLOCK}, settings=settings, db=db)
        assert set(again.counts()) == {"cached"}
    finally:
        db.dispose()
    # nothing at all in the default home: no database, no sample, no artifacts
    assert not tp_home.exists() or sorted(p.name for p in tp_home.iterdir()) == []


@pytest.mark.postgres
def test_ctx_db_is_the_submitted_database(pg_database_url: str, tp_home: Path) -> None:
    """A user task writing through ctx.db lands in the PostgreSQL database it was given."""
    seen: list[str] = []

    @task
    def where(ctx) -> str:
        with ctx.db.begin() as conn:
            seen.append(conn.execute(sa.text("SELECT current_database()")).scalar())
        return str(ctx.settings.home_dir)

    wf = Workflow("which-store")
    wf.add_node(where)
    db = Database(pg_database_url)
    try:
        run = submit(wf, settings=Settings(home=tp_home.parent / "pg-home"), db=db)
    finally:
        db.dispose()
    assert run.state == "succeeded"
    assert seen == [pg_database_url.rsplit("/", 1)[-1]]
    assert run.nodes["where"].outputs == str((tp_home.parent / "pg-home").resolve())
    assert not (tp_home / "terrapipe.db").exists()
