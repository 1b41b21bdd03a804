"""Packed R*Tree bulk build: checked by SQLite itself (rtreecheck, queries, its own INSERTs),
by brute force over the boxes, and by decoding the node blobs from the documented format."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terrapipe.catalog.load.rtree_pack import pack, rebuild
from terrapipe.errors import InvalidInput, StoreError

DDL = "CREATE VIRTUAL TABLE {} USING rtree(id, minx, maxx, miny, maxy)"
WINDOW = "SELECT id FROM t WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?"
INSERT = "INSERT INTO t (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)"
F32 = np.float32


def connect(path: Path | str, page_size: int = 4096, **kwargs: object) -> sqlite3.Connection:
    conn = sqlite3.connect(path, **kwargs)
    conn.execute(f"PRAGMA page_size = {page_size}")
    conn.execute(DDL.format("t"))
    conn.commit()
    return conn


def check(conn: sqlite3.Connection, table: str = "t") -> str:
    return conn.execute(f"SELECT rtreecheck('{table}')").fetchone()[0]


def stored(conn: sqlite3.Connection) -> tuple[np.ndarray, np.ndarray]:
    rows = conn.execute("SELECT id, minx, maxx, miny, maxy FROM t ORDER BY id").fetchall()
    arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return np.array([r[0] for r in rows], dtype=np.int64), arr[:, 1:]


def query(conn: sqlite3.Connection, w: tuple[float, float, float, float]) -> set[int]:
    """Rows whose box meets window ``w`` = (minx, maxx, miny, maxy)."""
    return {r[0] for r in conn.execute(WINDOW, (w[1], w[0], w[3], w[2]))}


def brute(rowids: np.ndarray, boxes: np.ndarray, w: tuple[float, float, float, float]) -> set:
    hit = (boxes[:, 0] <= w[1]) & (boxes[:, 1] >= w[0])
    hit &= (boxes[:, 2] <= w[3]) & (boxes[:, 3] >= w[2])
    return set(rowids[hit].tolist())


def random_boxes(rng: np.random.Generator, n: int, extreme: bool = False) -> np.ndarray:
    """Lon/lat boxes of mixed sizes, points, 1e-7 widths, world-edge boxes (and huge ones)."""
    x = rng.uniform(-180, 180, n)
    y = rng.uniform(-90, 90, n)
    w = rng.choice([0.0, 1e-7, 0.01, 1.0, 10.0], n) * rng.uniform(0, 1, n)
    w[rng.uniform(size=n) < 0.1] = 0.0  # degenerate point boxes
    h = rng.choice([0.0, 1e-7, 0.01, 1.0, 10.0], n) * rng.uniform(0, 1, n)
    b = np.column_stack([x, np.minimum(x + w, 180), y, np.minimum(y + h, 90)])
    k = min(n, 8)
    b[:k] = np.array(
        [
            [-180, 180, -90, 90],
            [-180, -180, -90, -90],
            [180, 180, 90, 90],
            [179.9999999, 180, -90, -89.9999999],
            [-180, -179.9999999, 89.9999999, 90],
            [0, 0, 0, 0],
            [-1e-7, 1e-7, -1e-7, 1e-7],
            [1e-7, 2e-7, 1e-7, 1.5e-7],
        ]
    )[:k]
    if extreme:
        m = n // 50
        b[k : k + m] = [[-1e30, 1e30, -3e38, 3e38]] * m
        b[k + m : k + 2 * m] = [[1e20, 1e20 + 1e14, -1e-30, 1e-30]] * m
    return b


def float32_exact(b: np.ndarray) -> np.ndarray:
    """The same boxes with float32-representable coordinates (order kept: rounding is monotonic)."""
    return b.astype(F32).astype(np.float64)


# --- the node blobs, decoded independently from SQLite's documented format ---


def decode(blob: bytes) -> tuple[int, list[tuple[int, float, float, float, float]]]:
    depth, ncell = struct.unpack_from(">HH", blob, 0)
    cells = [struct.unpack_from(">q4f", blob, 4 + 24 * i) for i in range(ncell)]
    assert not any(blob[4 + 24 * ncell :]), "bytes after the last cell must be zero"
    return depth, cells


def check_packed(tree, rowids, boxes, max_cells: int, node_size: int) -> None:
    """Everything rtreecheck checks, plus containment of the float64 boxes and fill."""
    assert all(len(b) == node_size for b in tree.blobs)
    nodes = {i + 1: decode(b) for i, b in enumerate(tree.blobs)}
    depth = nodes[1][0]
    assert depth == tree.depth
    parent: dict[int, int] = {}
    leaf: dict[int, tuple[int, tuple[float, ...]]] = {}

    def walk(nodeno: int, level: int) -> None:
        header, cells = nodes[nodeno]
        assert header == (depth if nodeno == 1 else 0)
        assert len(cells) <= max_cells
        if nodeno != 1:
            assert len(cells) >= max(1, max_cells // 3)  # SQLite's RTREE_MINCELLS
        for ident, *box in cells:
            if level == 0:
                assert ident not in leaf
                leaf[ident] = (nodeno, tuple(box))
                continue
            assert ident not in parent and ident in nodes
            parent[ident] = nodeno
            child = nodes[ident][1]
            assert box == [
                min(c[1] for c in child),
                max(c[2] for c in child),
                min(c[3] for c in child),
                max(c[4] for c in child),
            ]
            walk(ident, level - 1)

    walk(1, depth)
    assert set(nodes) == {1, *parent}
    assert (
        dict(zip(tree.child_nodenos.tolist(), tree.parent_nodenos.tolist(), strict=True)) == parent
    )
    assert dict(zip(tree.rowids.tolist(), tree.leaf_nodenos.tolist(), strict=True)) == {
        r: n for r, (n, _) in leaf.items()
    }
    assert list(tree.rowids) == sorted(rowids.tolist())
    for r, b in zip(rowids.tolist(), boxes.tolist(), strict=True):
        s = leaf[r][1]
        assert s[0] <= b[0] and s[1] >= b[1] and s[2] <= b[2] and s[3] >= b[3]
        for k in range(4):  # within two float32 steps of the float64 value
            assert abs(s[k] - b[k]) <= 2 * float(np.spacing(F32(abs(b[k])))) + 1e-45


@pytest.mark.parametrize(
    ("n", "max_cells", "node_size"),
    [(0, 51, 1228), (1, 51, 1228), (2, 2, 52), (3, 2, 52), (9, 3, 80), (50, 7, 176)]
    + [(51, 51, 1228), (52, 51, 1228), (500, 39, 960), (2602, 51, 1228)],
)
def test_pack_matches_the_node_format(n: int, max_cells: int, node_size: int) -> None:
    rng = np.random.default_rng(n)
    rowids = rng.permutation(np.arange(n, dtype=np.int64) * 7 - 3 * n)  # unsorted, negatives
    boxes = random_boxes(rng, n)
    tree = pack(rowids, boxes, max_cells, node_size)
    check_packed(tree, rowids, boxes, max_cells, node_size)
    depth, m = 0, n
    while m > max_cells:  # full nodes: the shallowest possible tree
        m, depth = -(-m // max_cells), depth + 1
    assert tree.depth == depth


def test_pack_rejects_bad_input() -> None:
    good = np.array([[0.0, 1.0, 0.0, 1.0], [2.0, 3.0, 2.0, 3.0]])
    with pytest.raises(InvalidInput, match="duplicate R\\*Tree rowid 5"):
        pack(np.array([5, 5]), good, 51)
    with pytest.raises(InvalidInput, match="min > max in the box of rowid 2"):
        pack(np.array([1, 2]), np.array([[0.0, 1.0, 0.0, 1.0], [3.0, 2.0, 0.0, 1.0]]), 51)
    with pytest.raises(InvalidInput, match="NaN"):
        pack(np.array([1, 2]), np.array([[0.0, 1.0, 0.0, np.nan], good[1]]), 51)
    with pytest.raises(InvalidInput, match="shape"):
        pack(np.array([1, 2, 3]), good, 51)
    with pytest.raises(InvalidInput, match="integer"):
        pack(np.array([1.0, 2.0]), good, 51)
    with pytest.raises(InvalidInput, match="max_cells"):
        pack(np.array([1, 2]), good, 1)
    with pytest.raises(InvalidInput, match="max_cells"):
        pack(np.array([1, 2]), good, 51, node_size=1000)


# --- SQLite: rtreecheck, its own storage, queries ---


@pytest.mark.parametrize(("n", "depth"), [(0, 0), (1, 0), (51, 0), (52, 1), (2601, 1), (2602, 2)])
def test_rebuild_is_a_valid_rtree(tmp_path: Path, n: int, depth: int) -> None:
    conn = connect(tmp_path / "r.db")
    rng = np.random.default_rng(n)
    rowids, boxes = np.arange(n, dtype=np.int64) * 2, random_boxes(rng, n)
    rebuild(conn.cursor(), "t", rowids, boxes)
    conn.commit()
    assert check(conn) == "ok"
    root = conn.execute("SELECT data FROM t_node WHERE nodeno = 1").fetchone()[0]
    assert len(root) == 1228 and int.from_bytes(root[:2], "big") == depth
    ids, _ = stored(conn)
    assert ids.tolist() == rowids.tolist()
    conn.close()
    conn = sqlite3.connect(tmp_path / "r.db")  # a fresh xConnect reads the tree from disk
    assert check(conn) == "ok"
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == n


def test_rebuild_200k_boxes_with_extreme_coordinates(tmp_path: Path) -> None:
    conn = connect(tmp_path / "r.db")
    rng = np.random.default_rng(7)
    n = 200_000
    boxes = random_boxes(rng, n, extreme=True)
    rowids = rng.permutation(n).astype(np.int64) * 2 + 1
    rebuild(conn.cursor(), "t", rowids, boxes)
    conn.commit()
    assert check(conn) == "ok"
    ids, got = stored(conn)
    want = boxes[np.argsort(rowids)]
    assert ids.tolist() == np.sort(rowids).tolist()
    assert (got[:, 0::2] <= want[:, 0::2]).all() and (got[:, 1::2] >= want[:, 1::2]).all()
    assert np.array_equal(got, got.astype(F32))  # stored as float32
    for w in [(-180, 180, -90, 90), (10, 10, 20, 20), (-1e-7, 1e-7, -1e-7, 1e-7)]:
        assert query(conn, w) >= brute(rowids, boxes, w)  # never misses a row


@pytest.mark.parametrize("page_size", [512, 4096])
def test_same_coordinates_and_answers_as_sqlite_inserts(tmp_path: Path, page_size: int) -> None:
    rng = np.random.default_rng(page_size)
    n = 3000
    boxes, rowids = random_boxes(rng, n), rng.permutation(n).astype(np.int64) - 1000
    ref = connect(tmp_path / "ref.db", page_size)
    ref.executemany(INSERT, zip(rowids.tolist(), *boxes.T.tolist(), strict=True))
    ref.commit()
    conn = connect(tmp_path / "r.db", page_size)
    rebuild(conn.cursor(), "t", rowids, boxes)
    conn.commit()
    assert check(conn) == "ok"
    ref_ids, ref_boxes = stored(ref)
    ids, got = stored(conn)
    assert ids.tolist() == ref_ids.tolist()
    assert np.array_equal(got, ref_boxes)  # bit for bit SQLite's rtreeValueDown / Up
    for w in random_windows(rng, boxes, 150):
        hits = query(conn, w)
        assert hits == query(ref, w)
        assert hits >= brute(rowids, boxes, w)


def random_windows(rng: np.random.Generator, boxes: np.ndarray, k: int) -> list[tuple]:
    """Random windows, and windows whose edges are exactly box edges (boundary cases)."""
    out = []
    for i in range(k):
        if i % 2:
            b = boxes[rng.integers(len(boxes))]
            out.append((b[1], b[1], b[3], b[3]) if i % 4 == 1 else tuple(b))
        else:
            x, y = rng.uniform(-185, 185), rng.uniform(-95, 95)
            dx, dy = rng.choice([0.0, 1e-6, 1.0, 30.0]), rng.choice([0.0, 1e-6, 1.0, 30.0])
            out.append((x, x + dx, y, y + dy))
    return out


@pytest.mark.parametrize("page_size", [512, 4096])
def test_window_queries_equal_brute_force(tmp_path: Path, page_size: int) -> None:
    rng = np.random.default_rng(1 + page_size)
    n = 5000
    boxes = float32_exact(random_boxes(rng, n))  # so float32 storage loses nothing
    rowids = np.arange(n, dtype=np.int64) * 2
    conn = connect(tmp_path / "r.db", page_size)
    rebuild(conn.cursor(), "t", rowids, boxes)
    conn.commit()
    for w in random_windows(rng, boxes, 300):
        assert query(conn, w) == brute(rowids, boxes, w)


coord = st.floats(-200, 200, width=32)  # float32 values: storage loses nothing
box = st.tuples(coord, coord, coord, coord).map(
    lambda c: (min(c[0], c[1]), max(c[0], c[1]), min(c[2], c[3]), max(c[2], c[3]))
)


def grid_boxes(seed: int, n: int) -> np.ndarray:
    """Boxes on a coarse grid: many shared edges, so windows often touch boxes exactly."""
    rng = np.random.default_rng(seed)
    lo = rng.integers(-8, 8, (n, 2)) * 0.5
    return np.column_stack(
        [lo[:, 0], lo[:, 0] + rng.integers(0, 3, n) * 0.5, lo[:, 1]]
        + [lo[:, 1] + rng.integers(0, 3, n) * 0.5]
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    boxes=st.lists(box, max_size=60),
    bulk=st.integers(0, 1500),
    seed=st.integers(0, 2**32 - 1),
    windows=st.lists(box, min_size=1, max_size=6),
)
def test_property_queries_equal_brute_force(
    boxes: list, bulk: int, seed: int, windows: list
) -> None:
    conn = connect(":memory:", page_size=512)  # 18 cells a node: deep trees for small n
    b = np.concatenate([np.array(boxes, dtype=np.float64).reshape(-1, 4), grid_boxes(seed, bulk)])
    rowids = np.random.default_rng(seed).permutation(len(b)).astype(np.int64) * 3 - 50
    rebuild(conn.cursor(), "t", rowids, b)
    assert check(conn) == "ok"
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == len(b)
    for w in [*windows, *grid_boxes(seed + 1, 8).tolist()]:
        assert query(conn, w) == brute(rowids, b, w)


def test_incremental_writes_after_rebuild(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    conn = connect(tmp_path / "r.db", page_size=512)
    n = 4000
    rows = dict(zip(range(n), float32_exact(random_boxes(rng, n)).tolist(), strict=True))
    rebuild(conn.cursor(), "t", np.array(list(rows)), np.array(list(rows.values())))
    conn.commit()
    new = float32_exact(random_boxes(rng, 1500)).tolist()
    conn.executemany(INSERT, [(n + i, *b) for i, b in enumerate(new)])
    rows.update({n + i: b for i, b in enumerate(new)})
    gone = rng.choice(n + 1500, 2500, replace=False).tolist()
    conn.executemany("DELETE FROM t WHERE id = ?", [(i,) for i in gone])
    for i in gone:
        del rows[i]
    moved = rng.choice(list(rows), 500, replace=False).tolist()
    for i, b in zip(moved, float32_exact(random_boxes(rng, 500)).tolist(), strict=True):
        conn.execute("UPDATE t SET minx = ?, maxx = ?, miny = ?, maxy = ? WHERE id = ?", (*b, i))
        rows[i] = b
    conn.commit()
    assert check(conn) == "ok"
    rowids, boxes = np.array(list(rows)), np.array(list(rows.values()))
    assert stored(conn)[0].tolist() == sorted(rows)
    for w in random_windows(rng, boxes, 200):
        assert query(conn, w) == brute(rowids, boxes, w)


def test_rebuild_replaces_previous_content(tmp_path: Path) -> None:
    conn = connect(tmp_path / "r.db")
    conn.executemany(INSERT, [(i, i, i + 1, 0, 1) for i in range(300)])
    conn.commit()
    rowids = np.arange(200, 400, dtype=np.int64)
    boxes = np.column_stack([-rowids, -rowids + 0.5, rowids, rowids + 0.5]).astype(float)
    rebuild(conn.cursor(), "t", rowids, boxes)
    conn.commit()
    assert check(conn) == "ok"
    ids, got = stored(conn)
    assert ids.tolist() == list(range(200, 400))  # 0..199 gone, 200..299 replaced
    assert np.array_equal(got, boxes)
    assert query(conn, (0, 300, 0, 1)) == set()
    rebuild(conn.cursor(), "t", np.empty(0, np.int64), np.empty((0, 4)))
    conn.commit()
    assert check(conn) == "ok"
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    root = conn.execute("SELECT data FROM t_node").fetchall()
    assert root == [(bytes(1228),)]  # the empty tree: depth 0, 0 cells
    assert conn.execute("SELECT count(*) FROM t_rowid").fetchone()[0] == 0
    conn.execute(INSERT, (1, 0, 1, 0, 1))
    assert check(conn) == "ok" and query(conn, (0, 0, 0, 0)) == {1}


def test_rebuild_in_the_callers_transaction(tmp_path: Path) -> None:
    conn = connect(tmp_path / "r.db")
    conn.executemany(INSERT, [(i, i, i + 1, 0, 1) for i in range(100)])
    conn.commit()
    rebuild(conn.cursor(), "t", np.array([7]), np.array([[0.0, 1.0, 0.0, 1.0]]))
    assert conn.in_transaction
    conn.rollback()
    assert check(conn) == "ok" and stored(conn)[0].tolist() == list(range(100))
    # autocommit: the rebuild commits as one statement would
    auto = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    rebuild(auto.cursor(), "t", np.array([7]), np.array([[0.0, 1.0, 0.0, 1.0]]))
    assert not auto.in_transaction
    assert stored(conn)[0].tolist() == [7] and check(conn) == "ok"


def test_failed_rebuild_leaves_the_table_and_transaction(tmp_path: Path) -> None:
    conn = connect(tmp_path / "r.db")
    conn.executemany(INSERT, [(i, i, i + 1, 0, 1) for i in range(100)])
    conn.execute("CREATE TABLE other (x)")
    conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON t_rowid WHEN NEW.rowid = 150 "
        "BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )
    conn.commit()
    conn.execute("INSERT INTO other VALUES (1)")
    rowids = np.arange(200, dtype=np.int64)
    with pytest.raises(StoreError, match="boom"):
        rebuild(conn.cursor(), "t", rowids, np.tile([0.0, 1.0, 0.0, 1.0], (200, 1)))
    assert conn.in_transaction
    conn.commit()
    assert check(conn) == "ok" and stored(conn)[0].tolist() == list(range(100))
    assert conn.execute("SELECT x FROM other").fetchall() == [(1,)]


@pytest.mark.parametrize("name", ["1t", "t; DROP TABLE t", "main.t", "", 't"', "t-1", None])
def test_bad_table_name(tmp_path: Path, name: object) -> None:
    conn = connect(tmp_path / "r.db")
    with pytest.raises(StoreError, match="invalid R\\*Tree table name"):
        rebuild(conn.cursor(), name, np.array([1]), np.array([[0.0, 1.0, 0.0, 1.0]]))


@pytest.mark.parametrize(
    ("ddl", "message"),
    [
        ("CREATE VIRTUAL TABLE x USING rtree(id, minx, maxx, miny, maxy, +name)", "auxiliary"),
        ("CREATE VIRTUAL TABLE x USING rtree(id, a, b, +c, +d)", "auxiliary"),
        ("CREATE VIRTUAL TABLE x USING rtree(id, a, b, c, d, e, f)", "2-dimensional"),
        ("CREATE VIRTUAL TABLE x USING rtree(id, a, b)", "2-dimensional"),
        ("CREATE VIRTUAL TABLE x USING rtree_i32(id, a, b, c, d)", "not an rtree"),
        ("CREATE TABLE x (id, minx, maxx, miny, maxy)", "not an rtree"),
        ("CREATE TABLE y (z)", "not an rtree"),
    ],
)
def test_tables_it_cannot_pack(tmp_path: Path, ddl: str, message: str) -> None:
    conn = connect(tmp_path / "r.db")
    conn.execute(ddl)
    with pytest.raises(StoreError, match=message):
        rebuild(conn.cursor(), "x", np.array([1]), np.array([[0.0, 1.0, 0.0, 1.0]]))


def test_unexpected_node_size(tmp_path: Path) -> None:
    conn = connect(tmp_path / "r.db")
    conn.execute("UPDATE t_node SET data = zeroblob(2000) WHERE nodeno = 1")
    with pytest.raises(StoreError, match="unexpected node size \\(2000 bytes"):
        rebuild(conn.cursor(), "t", np.array([1]), np.array([[0.0, 1.0, 0.0, 1.0]]))
    conn.execute("DELETE FROM t_node")
    with pytest.raises(StoreError, match="no root node"):
        rebuild(conn.cursor(), "t", np.array([1]), np.array([[0.0, 1.0, 0.0, 1.0]]))


def test_bad_boxes_leave_the_table_alone(tmp_path: Path) -> None:
    conn = connect(tmp_path / "r.db")
    conn.execute(INSERT, (1, 0, 1, 0, 1))
    conn.commit()
    with pytest.raises(InvalidInput, match="duplicate"):
        rebuild(conn.cursor(), "t", np.array([2, 2]), np.zeros((2, 4)))
    assert stored(conn)[0].tolist() == [1]


def test_containment_where_sqlites_own_rounding_fails(tmp_path: Path) -> None:
    """float32 subnormals and values beyond float32: SQLite's INSERT stores a box that does
    not contain the float64 one (1e-45 -> min 1.4e-45); the packed tree still contains it."""
    conn = connect(tmp_path / "r.db")
    vals = [1e-45, -1e-45, 1e-40, -1e-40, 1e39, -1e39, 3.4028235e38]
    boxes = np.array([[v, v, v, v] for v in vals])
    rowids = np.arange(len(vals), dtype=np.int64)
    ref = connect(tmp_path / "ref.db")
    ref.executemany(INSERT, zip(rowids.tolist(), *boxes.T.tolist(), strict=True))
    _, theirs = stored(ref)
    assert not ((theirs[:, 0::2] <= boxes[:, 0::2]) & (theirs[:, 1::2] >= boxes[:, 1::2])).all()
    rebuild(conn.cursor(), "t", rowids, boxes)
    assert check(conn) == "ok"
    _, ours = stored(conn)
    assert (ours[:, 0::2] <= boxes[:, 0::2]).all() and (ours[:, 1::2] >= boxes[:, 1::2]).all()
    for i, v in enumerate(vals):
        assert i in query(conn, (v, v, v, v))


@pytest.mark.skipif(not hasattr(sqlite3.Connection, "setconfig"), reason="Python >= 3.12")
def test_defensive_mode_is_a_store_error(tmp_path: Path) -> None:
    conn = connect(tmp_path / "r.db")
    conn.setconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE, True)
    with pytest.raises(StoreError, match="DEFENSIVE"):
        rebuild(conn.cursor(), "t", np.array([1]), np.array([[0.0, 1.0, 0.0, 1.0]]))
