"""Throughput and start latency of the celery engine against raw Celery, same broker.

- terrapipe: a fan-out of N no-op mapped nodes (plus the node listing the items) through 2
  `terrapipe worker` processes, Redis broker, PostgreSQL run store; nodes/s from submit to
  the run's end (every node claimed, recorded and its successors decided in the database).
- raw Celery: N no-op tasks published to 2 plain `celery worker` processes on the same
  broker with the same settings (acks_late, prefetch 1, no result backend; each task
  INCRs a Redis counter so the end can be seen), tasks/s from the first publish to the last
  task done.
- latency: submit (or publish) -> the first node (task) starting, one-node workflow.

Median of 3 each. Target: terrapipe >= 0.5x raw Celery's throughput.

    .venv/bin/python benchmarks/celery_throughput.py [--nodes 2000] [--repeat 3] [--pool prefork]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import sqlalchemy as sa

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/{db}"

FLOW = """
from terrapipe import Workflow, task


@task
def items(count: int = 10, rep: int = 0) -> list:
    return list(range(count))


@task
def each(item: int, rep: int = 0) -> int:
    return item


@task
def one(rep: int = 0) -> int:
    return 1


fan = Workflow("bench-celery-fan")
fan.add_node(items)
fan.add_node(each, items, map_over=True)

single = Workflow("bench-celery-one")
single.add_node(one)
"""

RAW = """
import os
import time

import redis
from celery import Celery

app = Celery("raw", broker=os.environ["BENCH_BROKER"], set_as_current=False)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)
_client = {}


def _redis():
    if "c" not in _client:
        _client["c"] = redis.Redis.from_url(os.environ["BENCH_BROKER"])
    return _client["c"]


@app.task(name="raw.noop")
def noop(counter):
    _redis().incr(counter)


@app.task(name="raw.stamp")
def stamp(key):
    _redis().set(key, repr(time.time()))
"""


def create_db() -> str:
    name = f"tp_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_db(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while " ready." not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def bench_terrapipe(env, work: Path, n: int, repeat: int, pool: str) -> tuple[list, list]:
    from terrapipe.runs import submit
    from terrapipe.settings import get_settings
    from terrapipe.store.db import Database

    module = str(work / "benchflow.py")
    cmd = [sys.executable, "-m", "terrapipe.cli.main", "worker", "-l", "INFO"]
    cmd += ["--module", module, "-c", "1", "--pool", pool]
    procs = [start(cmd, env, work / f"tp-worker-{i}.log") for i in range(2)]
    os.environ.update(env)
    settings = get_settings()
    db = Database(settings.sqlalchemy_url)
    from terrapipe.core.registry import find_workflow

    one = find_workflow("bench-celery-one", modules=[module])  # the registry is loaded once
    fan = find_workflow("bench-celery-fan", modules=[module])
    rates, latencies = [], []
    # one kept autocommit connection watches the runs: polling must load the machine as
    # little as raw Celery's Redis GET does (a pooled transaction per poll cost 3 statements)
    watch = psycopg.connect(db_url_of(settings.sqlalchemy_url), autocommit=True)
    try:
        # warm-up, as raw Celery's client sends one task first: imports, the Celery app and
        # the broker connection of this (submitting) process
        _wait_final(
            watch,
            submit(one, {"rep": -1}, engine="celery", db=db, settings=settings, wait=False).id,
        )
        for rep in range(repeat):
            wall0 = dt.datetime.now(dt.UTC)
            run = submit(
                one,
                {"rep": rep},
                engine="celery",
                db=db,
                settings=settings,
                wait=False,
            )
            while True:
                started = watch.execute(
                    "SELECT started_at FROM nodes WHERE run_id = %s AND started_at IS NOT NULL",
                    (run.id,),
                ).fetchone()
                if started is not None:
                    break
                time.sleep(0.0005)
            latencies.append((started[0] - wall0).total_seconds())
            _wait_final(watch, run.id)
        for rep in range(repeat):
            t0 = time.perf_counter()
            run = submit(
                fan,
                {"count": n, "rep": rep},
                engine="celery",
                db=db,
                settings=settings,
                wait=False,
            )
            state = _wait_final(watch, run.id)
            elapsed = time.perf_counter() - t0
            assert state == "succeeded", state
            rates.append((n + 1) / elapsed)
    finally:
        watch.close()
        db.dispose()
        stop(procs)
    return rates, latencies


def db_url_of(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _wait_final(watch, run_id: str) -> str:
    while True:
        state = watch.execute("SELECT state FROM runs WHERE id = %s", (run_id,)).fetchone()[0]
        if state not in ("queued", "running"):
            return state
        time.sleep(0.005)


def bench_raw(env, work: Path, n: int, repeat: int, pool: str, queue: str) -> tuple[list, list]:
    import redis
    from celery import Celery

    env = {**env, "PYTHONPATH": f"{work}{os.pathsep}{env.get('PYTHONPATH', '')}"}
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "rawtasks",
        "worker",
        "-Q",
        queue,
        "-c",
        "1",
        "--pool",
        pool,
        "-l",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    procs = [
        start([*cmd, "-n", f"raw{i}-{queue}@%h"], env, work / f"raw-{i}.log") for i in range(2)
    ]
    broker = env["BENCH_BROKER"]
    app = Celery("rawclient", broker=broker, set_as_current=False)
    app.conf.update(task_ignore_result=True)
    client = redis.Redis.from_url(broker)
    rates, latencies = [], []
    try:
        with app.producer_or_acquire() as producer:
            app.send_task("raw.noop", args=("warm",), queue=queue, producer=producer)
        for _ in range(repeat):
            key = f"bench:stamp:{uuid.uuid4().hex}"
            t0 = time.time()
            app.send_task("raw.stamp", args=(key,), queue=queue)
            while (value := client.get(key)) is None:
                time.sleep(0.0005)
            latencies.append(float(value) - t0)
            client.delete(key)
        for _ in range(repeat):
            counter = f"bench:count:{uuid.uuid4().hex}"
            t0 = time.perf_counter()
            with app.producer_or_acquire() as producer:
                for _ in range(n):
                    app.send_task("raw.noop", args=(counter,), queue=queue, producer=producer)
            while int(client.get(counter) or 0) < n:
                time.sleep(0.002)
            rates.append(n / (time.perf_counter() - t0))
            client.delete(counter)
    finally:
        stop(procs)
        client.close()
    return rates, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pool", default="prefork", choices=("prefork", "solo", "threads"))
    parser.add_argument("--redis-db", type=int, default=14)
    args = parser.parse_args()
    db_url = create_db()
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    broker = REDIS.format(db=args.redis_db)
    with tempfile.TemporaryDirectory(prefix="tp-bench-") as tmp:
        work = Path(tmp)
        (work / "benchflow.py").write_text(FLOW)
        (work / "rawtasks.py").write_text(RAW)
        env = {
            **os.environ,
            "TERRAPIPE_HOME": str(work / "home"),
            "TERRAPIPE_DATABASE_URL": db_url,
            "TERRAPIPE_BROKER_URL": broker,
            "TERRAPIPE_DEFAULT_QUEUE": queue,
            "BENCH_BROKER": broker,
        }
        try:
            tp_rates, tp_lat = bench_terrapipe(env, work, args.nodes, args.repeat, args.pool)
            raw_rates, raw_lat = bench_raw(
                env, work, args.nodes, args.repeat, args.pool, f"{queue}-raw"
            )
        finally:
            drop_db(db_url)
    tp, raw = statistics.median(tp_rates), statistics.median(raw_rates)
    tl, rl = statistics.median(tp_lat), statistics.median(raw_lat)
    print(f"{args.nodes} no-op nodes, 2 workers x 1 slot ({args.pool}), Redis + PostgreSQL")
    tp_runs = ", ".join(f"{r:.0f}" for r in tp_rates)
    raw_runs = ", ".join(f"{r:.0f}" for r in raw_rates)
    print(f"terrapipe celery engine: {tp:8.0f} nodes/s   (runs: {tp_runs})")
    print(f"raw Celery:              {raw:8.0f} tasks/s   (runs: {raw_runs})")
    print(f"ratio: {tp / raw:.2f}x raw Celery (target >= 0.5x)")
    print(
        f"submit -> first node start: terrapipe {tl * 1000:.1f} ms, raw Celery {rl * 1000:.1f} ms"
        f" ({tl / rl:.1f}x)"
    )


if __name__ == "__main__":
    main()
