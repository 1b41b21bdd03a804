"""The celery engine with real parts: PostgreSQL, Redis, and `terrapipe worker` processes.

Each test has its own PostgreSQL database, Redis db number and queue name, starts real
worker processes and kills them in teardown.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio
from celery_support import (
    CeleryEnv,
    free_port,
    make_env,
    node_rows,
    run_row,
    wait_for,
)
from tests.pg import create_pg_database, drop_pg_database
from tests.rasters import write_geotiff

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


@pytest.fixture
def pg_url():
    url = create_pg_database("tp_cel")
    yield url
    drop_pg_database(url)


@pytest.fixture
def cel(tmp_path: Path, pg_url: str):
    env = make_env(tmp_path, pg_url)
    yield env
    env.stop_all()
    import redis

    client = redis.Redis.from_url(env.env["TERRAPIPE_BROKER_URL"])
    client.delete(env.env["TERRAPIPE_DEFAULT_QUEUE"])
    client.close()


def _nodes(doc: dict) -> dict[str, tuple]:
    """key -> (state, reason, outputs) of a run's JSON document."""
    out = {}
    for value in doc["nodes"].values():
        for inst in value if isinstance(value, list) else [value]:
            out[inst["key"]] = (inst["state"], inst["reason"], inst["outputs"])
    return out


def _workers(doc: dict) -> dict[str, str]:
    out = {}
    for value in doc["nodes"].values():
        for inst in value if isinstance(value, list) else [value]:
            out[inst["key"]] = inst["worker"]
    return out


def test_user_workflow_same_on_local_and_celery(cel: CeleryEnv, tmp_path: Path) -> None:
    cel.start_worker("--module", str(cel.module), "-c", "2")
    mod = str(cel.module)
    local_env = {"TERRAPIPE_HOME": str(tmp_path / "local"), "TERRAPIPE_DATABASE_URL": ""}
    docs = {}
    for engine, extra in (("local", local_env), ("celery", {})):
        runs = []
        for n in ("4", "6"):  # a second run: cached items, new items, changed parameter
            args = ["run", "smoke", "--module", mod, "-p", f"n={n}", "--engine", engine]
            code, doc, err = cel.cli_json(*args, "--wait", **extra)
            assert code == 0, err
            assert doc["engine"] == engine and doc["state"] == "succeeded"
            runs.append(doc)
        docs[engine] = runs
    for local, celery in zip(docs["local"], docs["celery"], strict=True):
        assert _nodes(celery) == _nodes(local)
    second = _nodes(docs["celery"][1])
    # independent of the code: squares and their sum
    assert [second[f"square[{i}]"][2] for i in range(6)] == [i * i for i in range(6)]
    assert second["total"][2] == sum(i * i for i in range(6))
    assert second["square[0]"][:2] == ("cached", "unchanged")
    assert second["square[5]"][:2] == ("succeeded", "no cached result")
    assert second["items"][1].startswith("parameter changed")
    assert all(_workers(docs["celery"][1]).values())
    # `runs show` names the worker (host:pid) that ran each node
    shown = cel.cli("runs", "show", docs["celery"][1]["run_id"], "--all")
    assert shown.returncode == 0 and "worker" in shown.stdout
    assert _workers(docs["celery"][1])["total"].split(":")[0] in shown.stdout


def test_builtin_clip_raster_same_on_local_and_celery(cel: CeleryEnv, tmp_path: Path) -> None:
    values = np.arange(100, dtype="float32").reshape(10, 10)
    x0, y0 = 500000.0, 2000000.0
    path = write_geotiff(
        tmp_path / "values.tif", values, crs="EPSG:32644", origin=(x0, y0), res=10, nodata=-1
    )
    roi = f"SRID=32644;POLYGON(({x0} {y0 - 30}, {x0 + 30} {y0 - 30}, {x0 + 30} {y0}, {x0} {y0}, {x0} {y0 - 30}))"  # noqa: E501
    cel.start_worker()
    local_env = {"TERRAPIPE_HOME": str(tmp_path / "local"), "TERRAPIPE_DATABASE_URL": ""}
    docs = {}
    for engine, extra in (("local", local_env), ("celery", {})):
        args = ["run", "clip-raster", "-p", f"raster={path}", "-p", f"roi={roi}"]
        code, doc, err = cel.cli_json(*args, "--engine", engine, "--wait", **extra)
        assert code == 0, err
        docs[engine] = doc
    states = {e: {k: v[:2] for k, v in _nodes(d).items()} for e, d in docs.items()}
    assert states["celery"] == states["local"]
    for doc in docs.values():
        files = doc["nodes"]["clip-raster"]["outputs"]["layer"]["files"]
        with rasterio.open(files[0]) as src:
            np.testing.assert_array_equal(src.read(1), values[0:3, 0:3])
    # the layer was recorded in the run's own database (ctx.db on the worker)
    layers = cel.cli("layers", "list", "--json")
    assert layers.returncode == 0 and "clip" in layers.stdout


def test_fan_out_of_200_across_two_workers_each_item_once(cel: CeleryEnv, tmp_path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    for _ in range(2):
        cel.start_worker("--module", str(cel.module), "-c", "1")
    args = ["run", "smoke", "--module", str(cel.module), "-p", "n=200", "-p", f"marks={marks}"]
    code, doc, err = cel.cli_json(*args, "-p", "pause=0.01", "--engine", "celery", "--wait")
    assert code == 0, err
    rows = node_rows(cel.db_url, doc["run_id"])
    squares = [r for r in rows if r["key"].startswith("square[")]
    assert len(squares) == 200 and {r["state"] for r in squares} == {"succeeded"}
    assert len({r["key"] for r in rows}) == len(rows) == 202
    for i in range(200):  # the side effect happened exactly once per item
        assert len((marks / f"square-{i}").read_text().splitlines()) == 1, i
    assert len({r["worker"] for r in squares}) == 2  # both workers took items
    assert _nodes(doc)["total"][2] == sum(i * i for i in range(200))


def test_sigkill_a_worker_mid_node_the_run_still_completes(cel: CeleryEnv, tmp_path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    first = cel.start_worker("--module", str(cel.module), "-c", "1")
    args = ["run", "chain", "--module", str(cel.module), "-p", f"marks={marks}"]
    code, doc, err = cel.cli_json(*args, "-p", "pause=3", "--engine", "celery")
    assert code == 0, err
    run_id = doc["run_id"]
    wait_for(lambda: (marks / "slow").exists(), 30, "the slow node to start")
    rows = {r["key"]: r for r in node_rows(cel.db_url, run_id)}
    assert rows["slow"]["state"] == "running"
    killed_worker = rows["slow"]["worker"]
    first.kill(signal.SIGKILL)
    cel.start_worker("--module", str(cel.module), "-c", "1")
    wait_for(lambda: run_row(cel.db_url, run_id)["state"] != "running", 60, "the run to end")
    assert run_row(cel.db_url, run_id)["state"] == "succeeded"
    code, doc, err = cel.cli_json("runs", "show", run_id)
    nodes = _nodes(doc)
    assert nodes["after"][2] == 7 * 6 + 1 and nodes["slow"][2] == 42
    rows = node_rows(cel.db_url, run_id)
    assert sorted(r["key"] for r in rows) == ["after", "first", "slow"]  # one row each
    slow = next(r for r in rows if r["key"] == "slow")
    assert slow["worker"] != killed_worker  # finished by the second worker
    assert len((marks / "slow").read_text().splitlines()) == 2  # started twice, recorded once
    assert len((marks / "after").read_text().splitlines()) == 1


def test_cancel_a_running_run(cel: CeleryEnv, tmp_path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    worker = cel.start_worker("--module", str(cel.module), "-c", "1")
    args = ["run", "hanging", "--module", str(cel.module), "-p", "n=4", "-p", f"marks={marks}"]
    code, doc, err = cel.cli_json(*args, "--engine", "celery")
    assert code == 0, err
    run_id = doc["run_id"]
    wait_for(lambda: list(marks.iterdir()), 30, "a node to start")
    started = time.monotonic()
    assert cel.cli("runs", "cancel", run_id).returncode == 0
    wait_for(lambda: run_row(cel.db_url, run_id)["state"] != "running", 20, "the run to end")
    assert time.monotonic() - started < 10  # the running node saw ctx.cancelled
    assert run_row(cel.db_url, run_id)["state"] == "cancelled"
    states = {r["key"]: r["state"] for r in node_rows(cel.db_url, run_id)}
    assert states["items"] == "succeeded"
    assert {s for k, s in states.items() if k != "items"} == {"cancelled"}
    time.sleep(1.5)  # the queued messages are delivered: they must not start anything
    assert sorted(p.name for p in marks.iterdir()) == ["hold-0"]
    # ... they were revoked through Celery: the worker discarded them unopened, or (a
    # revoke is a broadcast, and may reach the worker after the message did) opened them,
    # found their node final and did nothing
    log = worker.log.read_text()
    leftovers = {"hold[1]", "hold[2]", "hold[3]"}
    discarded = {k for k in leftovers if f".{k}]" in _revoked(log)}
    skipped = {k for k in leftovers if f".{k}] succeeded" in log and _skipped(log, k)}
    assert discarded | skipped == leftovers, log[-3000:]
    assert "hold[0]]" not in _revoked(log)  # the running one ended through ctx.cancelled


def _skipped(log: str, key: str) -> bool:
    return any(f".{key}]" in line and "skipped: final" in line for line in log.splitlines())


def _revoked(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if "Discarding revoked task" in line)


def test_worker_without_the_module_fails_the_nodes_naming_the_workflow(cel: CeleryEnv) -> None:
    cel.start_worker()  # no --module
    args = ["run", "chain", "--module", str(cel.module), "--engine", "celery", "--wait"]
    started = time.monotonic()
    code, doc, err = cel.cli_json(*args)
    assert code == 1, err
    assert time.monotonic() - started < 30
    assert doc["state"] == "failed"
    assert "'chain'" in doc["error"] and "version 2" in doc["error"]
    assert _nodes(doc)["first"][0] == "failed"


def test_unreachable_broker_is_one_line_exit_2_and_the_run_is_failed(cel: CeleryEnv) -> None:
    broker = f"redis://127.0.0.1:{free_port()}/0"
    args = ["run", "chain", "--module", str(cel.module), "--engine", "celery"]
    done = cel.cli(*args, TERRAPIPE_BROKER_URL=broker)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Celery broker" in lines[0], done.stderr
    assert broker in lines[0] and "Traceback" not in done.stderr
    listed = cel.cli("runs", "list", "--json")
    runs = json.loads(listed.stdout)
    assert len(runs) == 1 and runs[0]["state"] == "failed"
    assert "cannot reach the Celery broker" in runs[0]["error"]


def test_sqlite_is_refused_naming_the_variable(cel: CeleryEnv, tmp_path) -> None:
    args = ["run", "chain", "--module", str(cel.module), "--engine", "celery"]
    done = cel.cli(*args, TERRAPIPE_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    assert done.returncode == 2
    assert "TERRAPIPE_DATABASE_URL" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_retry_waits_off_the_worker_slot(cel: CeleryEnv, tmp_path) -> None:
    """flaky[0] fails twice (retry_delay 1.5 s, backoff: 1.5 + 3 s); with one slot, its
    siblings finish while it waits, so the wait is a countdown, not a sleep in the slot."""
    marks = tmp_path / "marks"
    marks.mkdir()
    cel.start_worker("--module", str(cel.module), "-c", "1")
    args = ["run", "retrying", "--module", str(cel.module), "-p", "n=3", "-p", f"marks={marks}"]
    code, doc, err = cel.cli_json(*args, "--engine", "celery", "--wait")
    assert code == 0, err
    nodes = _nodes(doc)
    assert [nodes[f"flaky[{i}]"][2] for i in range(3)] == [100, 101, 102]
    assert len((marks / "flaky-0").read_text().splitlines()) == 3
    by_key = {}
    for value in doc["nodes"].values():
        for inst in value if isinstance(value, list) else [value]:
            by_key[inst["key"]] = inst
    assert by_key["flaky[0]"]["attempts"] == 3 and by_key["flaky[1]"]["attempts"] == 1
    import sqlalchemy as sa

    engine = sa.create_engine(cel.db_url)
    with engine.connect() as conn:
        done = dict(
            conn.execute(
                sa.text("SELECT key, finished_at FROM nodes WHERE run_id = :r"),
                {"r": doc["run_id"]},
            ).all()
        )
    engine.dispose()
    assert (done["flaky[0]"] - done["flaky[2]"]).total_seconds() > 3.0


def test_resume_after_every_worker_stopped_and_messages_lost(cel: CeleryEnv, tmp_path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    first = cel.start_worker("--module", str(cel.module), "-c", "1")
    args = ["run", "chain", "--module", str(cel.module), "-p", f"marks={marks}"]
    code, doc, err = cel.cli_json(*args, "-p", "pause=2", "--engine", "celery")
    assert code == 0, err
    run_id = doc["run_id"]
    wait_for(lambda: (marks / "slow").exists(), 30, "the slow node to start")
    first.kill(signal.SIGKILL)
    import redis

    client = redis.Redis.from_url(cel.env["TERRAPIPE_BROKER_URL"])
    client.delete(cel.env["TERRAPIPE_DEFAULT_QUEUE"], "unacked", "unacked_index")
    client.close()
    # a new worker whose sweeper will not look for a long time: only resume can help
    cel.start_worker("--module", str(cel.module), "-c", "1", TERRAPIPE_SWEEP_INTERVAL_S="600")
    time.sleep(3.5)  # the dead worker's lease (3 s) runs out
    assert run_row(cel.db_url, run_id)["state"] == "running"
    done = cel.cli("runs", "resume", run_id, "--module", str(cel.module))
    assert done.returncode == 0, done.stderr
    wait_for(lambda: run_row(cel.db_url, run_id)["state"] != "running", 60, "the run to end")
    code, doc, err = cel.cli_json("runs", "show", run_id)
    assert doc["state"] == "succeeded" and _nodes(doc)["after"][2] == 43
    assert len((marks / "after").read_text().splitlines()) == 1


def test_broker_stopped_and_started_mid_run(tmp_path: Path, pg_url: str) -> None:
    import subprocess

    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    cmd += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(data)]

    def start_redis() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
            except redis.RedisError:
                return False

        wait_for(up, 20, "redis-server")
        return proc

    server = start_redis()
    cel = make_env(tmp_path, pg_url, broker_url=f"redis://127.0.0.1:{port}/0")
    marks = tmp_path / "marks"
    marks.mkdir()
    try:
        run_id = _smoke_run_under_way(cel, marks)
        server.terminate()
        server.wait(timeout=10)
        time.sleep(2)
        server = start_redis()
        wait_for(lambda: run_row(cel.db_url, run_id)["state"] != "running", 90, "the run to end")
        code, doc, err = cel.cli_json("runs", "show", run_id)
        assert doc["state"] == "succeeded", doc.get("error")
        assert _nodes(doc)["total"][2] == sum(i * i for i in range(30))
    finally:
        cel.stop_all()
        server.kill()
        server.wait(timeout=10)


def test_dataset_lock_keeps_nodes_on_two_workers_apart(cel: CeleryEnv, tmp_path) -> None:
    """Every item names the same lock: with two workers free, no two items overlap."""
    marks = tmp_path / "marks"
    marks.mkdir()
    redis_url = cel.env["TERRAPIPE_BROKER_URL"]
    for _ in range(2):
        cel.start_worker("--module", str(cel.module), "-c", "1", TERRAPIPE_REDIS_URL=redis_url)
    args = ["run", "locking", "--module", str(cel.module), "-p", "n=4", "-p", f"marks={marks}"]
    code, doc, err = cel.cli_json(*args, "--engine", "celery", "--wait")
    assert code == 0, err
    spans = sorted(
        tuple(float(v) for v in (marks / f"locked-{i}").read_text().split()[:2]) for i in range(4)
    )
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, spans  # the next one started after the previous one ended
    assert [_nodes(doc)[f"locked[{i}]"][2] for i in range(4)] == [0, 1, 2, 3]


def test_node_timeout_as_on_the_local_engine(cel: CeleryEnv, tmp_path) -> None:
    cel.start_worker("--module", str(cel.module), "-c", "1")
    local_env = {"TERRAPIPE_HOME": str(tmp_path / "local"), "TERRAPIPE_DATABASE_URL": ""}
    docs = {}
    for engine, extra in (("local", local_env), ("celery", {})):
        args = ["run", "timing", "--module", str(cel.module), "--engine", engine, "--wait"]
        code, doc, err = cel.cli_json(*args, **extra)
        assert code == 1, err
        docs[engine] = doc
    assert _nodes(docs["celery"]) == _nodes(docs["local"])
    sleepy = docs["celery"]["nodes"]["sleepy"]
    assert sleepy["state"] == "failed" and "timed out after 1s" in sleepy["error"]
    assert _nodes(docs["celery"])["late"][0] == "upstream_failed"


def _rabbitmqctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _amqp_up(url: str) -> bool:
    import kombu

    try:
        with kombu.Connection(url, connect_timeout=1) as conn:
            conn.connect()
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _rabbit_start() -> None:
    """The RabbitMQ app started again (and the server, if it is not running at all)."""
    if _rabbitmqctl("start_app").returncode != 0:
        subprocess.run(["rabbitmq-server", "-detached"], check=False, timeout=30)
        wait_for(lambda: _rabbitmqctl("await_startup").returncode == 0, 90, "rabbitmq-server")
        _rabbitmqctl("start_app")
    wait_for(lambda: _amqp_up("amqp://guest:guest@127.0.0.1:5672//"), 60, "RabbitMQ")


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="RabbitMQ is not installed")
def test_rabbitmq_broker_stopped_and_started_mid_run(tmp_path: Path, pg_url: str) -> None:
    """As the Redis broker test, over AMQP: the broker's app stops mid-run (connections
    dropped, unacknowledged messages back to their queue) and starts again; the run ends
    succeeded with the right total. A vhost of its own keeps the test's queues apart."""
    vhost = f"tp-{uuid.uuid4().hex[:8]}"
    assert _rabbitmqctl("add_vhost", vhost).returncode == 0
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    cel = make_env(tmp_path, pg_url, broker_url=url)
    marks = tmp_path / "marks"
    marks.mkdir()
    try:
        run_id = _smoke_run_under_way(cel, marks)
        stopped = _rabbitmqctl("stop_app")
        assert stopped.returncode == 0, stopped.stderr
        assert not _amqp_up(url)  # it really is down
        time.sleep(2)
        _rabbit_start()
        wait_for(lambda: run_row(cel.db_url, run_id)["state"] != "running", 120, "the run to end")
        code, doc, err = cel.cli_json("runs", "show", run_id)
        assert doc["state"] == "succeeded", doc.get("error")
        assert _nodes(doc)["total"][2] == sum(i * i for i in range(30))
        assert {k: v[0] for k, v in _nodes(doc).items() if k.startswith("square")} == {
            f"square[{i}]": "succeeded" for i in range(30)
        }
    finally:
        cel.stop_all()
        _rabbit_start()  # whatever happened, the broker is up again for everyone
        _rabbitmqctl("delete_vhost", vhost)


def _smoke_run_under_way(cel: CeleryEnv, marks: Path) -> str:
    """A worker (2 slots) and a 30-item slow ``smoke`` run on it, a few items done."""
    cel.start_worker("--module", str(cel.module), "-c", "2")
    args = ["run", "smoke", "--module", str(cel.module), "-p", "n=30", "-p", f"marks={marks}"]
    code, doc, err = cel.cli_json(*args, "-p", "pause=0.3", "--engine", "celery")
    assert code == 0, err
    wait_for(lambda: len(list(marks.iterdir())) >= 4, 30, "a few items done")
    return doc["run_id"]
