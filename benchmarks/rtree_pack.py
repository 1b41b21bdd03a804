"""R*Tree benchmark: packed bulk build into the shadow tables vs inserts through the vtable.

Builds an R*Tree of N synthetic 1x1 degree boxes (the catalog benchmark's footprints) on
a fresh SQLite file, in one transaction, two ways: :func:`terrapipe.catalog.load.rtree_pack.
rebuild` (numpy packing + shadow-table writes), and ``executemany`` of ``INSERT INTO
<rtree>`` with the rows pre-sorted along a Z-order curve (as ``rtree.bulk_rows`` does; the
sort and the row lists are made before the clock starts). Both times include the COMMIT.
Prints the median of the runs, the ratio, and the time of random 1x1 degree window
queries on each tree.

    .venv/bin/python benchmarks/rtree_pack.py                 # 1,000,000 boxes, 3 runs
    .venv/bin/python benchmarks/rtree_pack.py --rows 100000 --runs 5
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from terrapipe.catalog.load.rtree_pack import pack, rebuild

DDL = "CREATE VIRTUAL TABLE bench_rtree USING rtree(id, minx, maxx, miny, maxy)"
WINDOW = (
    "SELECT count(*) FROM bench_rtree WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?"
)


def synthetic(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Rowids 2*i and 1x1 degree boxes (minx, maxx, miny, maxy) over the land latitudes."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-180, 179, n)
    ys = rng.uniform(-60, 69, n)
    return np.arange(n, dtype=np.int64) * 2, np.column_stack([xs, xs + 1, ys, ys + 1])


def zorder_rows(rowids: np.ndarray, boxes: np.ndarray) -> list[tuple]:
    """The rows sorted by the Morton key of the box centres on a 65536 x 65536 grid."""
    cx = (boxes[:, 0] + boxes[:, 1]) / 2
    cy = (boxes[:, 2] + boxes[:, 3]) / 2
    xi = np.clip((cx + 180) / 360 * 65535, 0, 65535).astype(np.uint64)
    yi = np.clip((cy + 90) / 180 * 65535, 0, 65535).astype(np.uint64)
    order = np.argsort(_spread(xi) | (_spread(yi) << np.uint64(1)), kind="stable")
    b = boxes[order]
    return list(zip(rowids[order].tolist(), *(b[:, k].tolist() for k in range(4)), strict=True))


def _spread(v: np.ndarray) -> np.ndarray:
    for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def timed_build(path: Path, fill: Callable[[sqlite3.Cursor], None]) -> float:
    """Seconds to fill a fresh R*Tree in one transaction, COMMIT included."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(DDL)
        cur = conn.cursor()
        start = time.perf_counter()
        cur.execute("BEGIN")
        fill(cur)
        cur.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


def window_query_us(path: Path, queries: int, seed: int = 2) -> tuple[float, int]:
    """Median microseconds of random 1x1 degree window counts, and the total hits."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-180, 179, queries).tolist()
    y = rng.uniform(-60, 69, queries).tolist()
    conn = sqlite3.connect(path)
    try:
        times, hits = [], 0
        for qx, qy in zip(x, y, strict=True):
            start = time.perf_counter()
            hits += conn.execute(WINDOW, (qx + 1, qx, qy + 1, qy)).fetchone()[0]
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e6, hits
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--check", action="store_true", help="also run rtreecheck() on both")
    args = parser.parse_args()
    rowids, boxes = synthetic(args.rows)
    rows = zorder_rows(rowids, boxes)
    insert = "INSERT INTO bench_rtree (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)"

    pack_s, packed_s, vtab_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            start = time.perf_counter()
            pack(rowids, boxes, 51)
            pack_s.append(time.perf_counter() - start)
            packed = Path(tmp) / f"packed{run}.db"
            packed_s.append(
                timed_build(packed, lambda cur: rebuild(cur, "bench_rtree", rowids, boxes))
            )
            inserted = Path(tmp) / f"inserted{run}.db"
            vtab_s.append(timed_build(inserted, lambda cur: cur.executemany(insert, rows)))
            print(
                f"run {run + 1}: pack {pack_s[-1]:.3f} s, rebuild {packed_s[-1]:.3f} s, "
                f"vtable inserts {vtab_s[-1]:.3f} s",
                flush=True,
            )
        p, v = statistics.median(packed_s), statistics.median(vtab_s)
        n = args.rows
        print(f"\n{n:,} boxes, median of {args.runs} runs (one transaction, COMMIT included):")
        print(f"  pack() alone          {statistics.median(pack_s):8.3f} s")
        print(f"  rebuild()             {p:8.3f} s  {p / n * 1e6:6.2f} us/box")
        print(f"  vtable executemany    {v:8.3f} s  {v / n * 1e6:6.2f} us/box  (Z-order)")
        print(f"  ratio vtable/rebuild  {v / p:8.1f}x")
        for label, path in (("packed", packed), ("inserted", inserted)):
            us, hits = window_query_us(path, args.queries)
            size = path.stat().st_size / 2**20
            print(
                f"  {label:9s} file {size:6.1f} MiB, 1x1 degree window query {us:7.1f} us "
                f"median ({hits} hits in {args.queries} queries)"
            )
            if args.check:
                conn = sqlite3.connect(path)
                check = conn.execute("SELECT rtreecheck('bench_rtree')").fetchone()[0]
                conn.close()
                print(f"  {label:9s} rtreecheck: {check}")


if __name__ == "__main__":
    main()
