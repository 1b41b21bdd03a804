"""Catalog benchmark: bulk insert rate, then spatio-temporal search() vs the raw indexed SQL.

Inserts N synthetic datasets (1x1 degree footprints over the land latitudes, 10 years of
acquisitions, one URI each) through ``save_datasets(..., bulk_load=True)``, then times
random searches (a 1x1 degree box and a 30-day window) through
:func:`terrapipe.catalog.query.search` and the same filter as one raw indexed SQL query on
the driver (R*Tree on SQLite, GiST on PostGIS). Prints the insert rate and its ratio to the
bare floor (the same rows, pre-encoded, into index-free tables), the search medians and the
ratio search()/raw.

    .venv/bin/python benchmarks/catalog_search.py                 # 1,000,000 rows, both
    .venv/bin/python benchmarks/catalog_search.py --rows 100000 --backend sqlite

PostgreSQL: a scratch database on 127.0.0.1:5432 (user postgres) is created and dropped.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa

from terrapipe.catalog import rtree
from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import save_datasets
from terrapipe.catalog.load import rtree_pack
from terrapipe.catalog.query import search
from terrapipe.store.db import Database

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2015, 1, 1, tzinfo=UTC)
DAYS = 3650


def synthetic(n: int, seed: int = 1) -> list[Dataset]:
    """N datasets with 1x1 degree footprints and random acquisition times."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-180, 179, n)
    ys = rng.uniform(-60, 69, n)
    boxes = shapely.box(xs, ys, xs + 1, ys + 1)
    seconds = rng.uniform(0, DAYS * 86400, n)
    clouds = rng.uniform(0, 100, n).round(1)
    out = []
    for i in range(n):
        start = T0 + timedelta(seconds=float(seconds[i]))
        out.append(
            Dataset(
                entry_id=f"SYN_{i:08d}",
                title=f"synthetic scene {i}",
                collection="synthetic",
                platform="landsat-8",
                instrument="oli-tirs",
                provider="bench",
                time_start=start,
                time_end=start + timedelta(seconds=30),
                footprint=boxes[i],
                properties={"cloud_cover": float(clouds[i])},
                uris=(DatasetURI(uri=f"https://data.example.test/SYN_{i:08d}.tif", size=1000),),
            )
        )
    return out


def queries(count: int, seed: int = 2) -> list[tuple[tuple[float, float, float, float], datetime]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        x, y = rng.uniform(-180, 179), rng.uniform(-60, 69)
        out.append(((x, y, x + 1, y + 1), T0 + timedelta(days=rng.uniform(0, DAYS - 30))))
    return out


def raw_sqlite(db: Database):
    raw = db.engine.raw_connection()
    sql = (
        "SELECT d.id, d.entry_id, d.time_start, d.footprint FROM datasets d "
        "WHERE d.id IN (SELECT id / 2 FROM datasets_rtree WHERE minx <= ? AND maxx >= ? "
        "AND miny <= ? AND maxy >= ?) AND d.time_start <= ? "
        "AND (d.time_end >= ? OR (d.time_end IS NULL AND d.time_start >= ?)) "
        "ORDER BY d.time_start"
    )

    def run(bbox, start, stop) -> int:
        a, b = _sqlite_time(start), _sqlite_time(stop)
        return len(raw.execute(sql, (bbox[2], bbox[0], bbox[3], bbox[1], b, a, a)).fetchall())

    return run, raw.close


def raw_postgres(db: Database):
    raw = db.engine.raw_connection()
    cur = raw.cursor()
    sql = (
        "SELECT id, entry_id, time_start, ST_AsBinary(footprint) FROM datasets "
        "WHERE ST_Intersects(footprint, ST_MakeEnvelope(%s, %s, %s, %s, 4326)) "
        "AND time_start <= %s AND (time_end >= %s OR (time_end IS NULL AND time_start >= %s)) "
        "ORDER BY time_start"
    )

    def run(bbox, start, stop) -> int:
        cur.execute(sql, (*bbox, stop, start, start))
        return len(cur.fetchall())

    def close() -> None:
        raw.rollback()
        raw.close()

    return run, close


def floors_sqlite(db: Database) -> tuple[float, float]:
    """Datasets/s of two driver floors over the stored rows, already as tuples: ``bare``
    (executemany into index-free copies of both tables, commit) and ``indexed`` (the same,
    then every index the catalog has built once, the R*Tree packed, commit)."""
    raw = db.engine.raw_connection()
    d = raw.execute("SELECT * FROM datasets").fetchall()
    u = raw.execute("SELECT * FROM dataset_uris").fetchall()
    boxes = np.array([r[10:14] for r in d], dtype=float)
    rowids, rtree_boxes = rtree.box_arrays([r[0] for r in d], boxes)
    rates = []
    for indexed in (False, True):
        raw.execute("CREATE TABLE floor_d AS SELECT * FROM datasets LIMIT 0")
        raw.execute("CREATE TABLE floor_u AS SELECT * FROM dataset_uris LIMIT 0")
        raw.execute("CREATE VIRTUAL TABLE floor_r USING rtree(id, minx, maxx, miny, maxy)")
        raw.commit()
        started = time.perf_counter()
        raw.execute("BEGIN")
        raw.executemany(f"INSERT INTO floor_d VALUES ({', '.join('?' * len(d[0]))})", d)
        raw.executemany(f"INSERT INTO floor_u VALUES ({', '.join('?' * len(u[0]))})", u)
        if indexed:
            raw.execute("CREATE UNIQUE INDEX floor_d_entry ON floor_d (entry_id)")
            raw.execute("CREATE INDEX floor_d_coll ON floor_d (collection)")
            raw.execute("CREATE INDEX floor_d_time ON floor_d (time_start)")
            raw.execute("CREATE INDEX floor_u_ds ON floor_u (dataset_id)")
            rtree_pack.rebuild(raw.cursor(), "floor_r", rowids, rtree_boxes)
        raw.commit()
        rates.append(len(d) / (time.perf_counter() - started))
        raw.execute("DROP TABLE floor_d")
        raw.execute("DROP TABLE floor_u")
        raw.execute("DROP TABLE floor_r")
        raw.commit()
    raw.close()
    return rates[0], rates[1]


def floors_postgres(db: Database) -> tuple[float, float]:
    """Datasets/s of two server floors over the stored rows, already in binary COPY format:
    ``bare`` (COPY into index-free copies of both tables, commit) and ``indexed`` (the same,
    then the primary keys, the unique entry_id, every index and the foreign key, commit)."""
    raw = db.engine.raw_connection()
    cur = raw.cursor()
    data = {}
    for table in ("datasets", "dataset_uris"):
        with cur.copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as copy:
            data[table] = b"".join(bytes(b) for b in copy)
    raw.commit()
    count = cur.execute("SELECT count(*) FROM datasets").fetchone()[0]
    rates = []
    for indexed in (False, True):
        cur.execute("CREATE TABLE floor_d (LIKE datasets)")
        cur.execute("CREATE TABLE floor_u (LIKE dataset_uris)")
        raw.commit()
        started = time.perf_counter()
        for table, name in (("floor_d", "datasets"), ("floor_u", "dataset_uris")):
            with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(data[name])
        if indexed:
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for statement in (
                "ALTER TABLE floor_d ADD PRIMARY KEY (id)",
                "CREATE UNIQUE INDEX ON floor_d (entry_id)",
                "CREATE INDEX ON floor_d (collection)",
                "CREATE INDEX ON floor_d (time_start)",
                "CREATE INDEX ON floor_d USING gist (footprint)",
                "ALTER TABLE floor_u ADD PRIMARY KEY (id)",
                "CREATE INDEX ON floor_u (dataset_id)",
                "ALTER TABLE floor_u ADD FOREIGN KEY (dataset_id) REFERENCES floor_d (id)",
            ):
                cur.execute(statement)
        raw.commit()
        rates.append(count / (time.perf_counter() - started))
        cur.execute("DROP TABLE floor_u, floor_d")
        raw.commit()
    raw.close()
    return rates[0], rates[1]


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def bench(db: Database, rows: int, searches: int) -> dict[str, float]:
    data = synthetic(rows)
    started = time.perf_counter()
    save_datasets(db, data, batch_size=20000, bulk_load=True)
    insert_s = time.perf_counter() - started
    del data
    if db.is_sqlite:
        with db.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    else:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE datasets"))
            conn.execute(sa.text("VACUUM ANALYZE dataset_uris"))
    raw, close = raw_sqlite(db) if db.is_sqlite else raw_postgres(db)
    qs = queries(searches)
    for bbox, start in qs[:10]:  # warm caches
        search(db, geometry=",".join(map(str, bbox)), begin=start, end=start + timedelta(days=30))
        raw(bbox, start, start + timedelta(days=30))
    api_ms, raw_ms, hits, raw_hits = [], [], 0, 0
    for bbox, start in qs:
        stop = start + timedelta(days=30)
        t = time.perf_counter()
        found = search(db, geometry=",".join(map(str, bbox)), begin=start, end=stop)
        api_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        raw_hits += raw(bbox, start, stop)
        raw_ms.append((time.perf_counter() - t) * 1000)
        hits += len(found)
    close()
    bare, indexed = floors_sqlite(db) if db.is_sqlite else floors_postgres(db)
    return {
        "bare_floor_per_s": bare,
        "indexed_floor_per_s": indexed,
        "insert_rows_per_s": rows / insert_s,
        "insert_s": insert_s,
        "search_median_ms": statistics.median(api_ms),
        "search_p95_ms": sorted(api_ms)[int(0.95 * len(api_ms))],
        "raw_median_ms": statistics.median(raw_ms),
        "ratio": statistics.median(api_ms) / statistics.median(raw_ms),
        "hits": hits,
        "raw_hits": raw_hits,
    }


def report(name: str, r: dict[str, float], rows: int, searches: int) -> None:
    print(
        f"{name}: inserted {rows:,} datasets in {r['insert_s']:.1f} s = "
        f"{r['insert_rows_per_s']:,.0f} datasets/s (target >= 100,000/s)\n"
        f"{name}: floors over the same rows pre-encoded (no Python objects): bare "
        f"{r['bare_floor_per_s']:,.0f}/s (no index), indexed {r['indexed_floor_per_s']:,.0f}/s "
        f"(every index built once after the load); insert / indexed floor "
        f"{r['insert_rows_per_s'] / r['indexed_floor_per_s']:.2f}\n"
        f"{name}: {searches} searches (1x1 deg box, 30 days): search() median "
        f"{r['search_median_ms']:.2f} ms (p95 {r['search_p95_ms']:.2f} ms, target < 5 ms); "
        f"raw indexed SQL median {r['raw_median_ms']:.2f} ms; ratio {r['ratio']:.1f}x; "
        f"results {r['hits']} (raw bbox-filtered {r['raw_hits']})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
            report("sqlite", bench(db, args.rows, args.searches), args.rows, args.searches)
            db.dispose()
    if args.backend in ("postgresql", "both"):
        name = f"tp_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            db = Database(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
            report("postgis", bench(db, args.rows, args.searches), args.rows, args.searches)
            db.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
