"""Packed SQLite R*Tree: bulk-build the whole tree in numpy, write it into the shadow tables.

Inserting boxes one by one through an ``rtree`` virtual table runs SQLite's R*Tree insert
(choose-leaf, splits, forced reinserts) for every row. :func:`rebuild` instead sorts all
boxes once (Sort-Tile-Recursive), fills the nodes level by level and writes the three
shadow tables directly, as GDAL's ``sqlite_rtree_bulk_load.c`` (GDAL >= 3.7) and
SpatiaLite 5.1 do. The result is an ordinary R*Tree: queries, ``rtreecheck()`` and later
INSERT / UPDATE / DELETE through the virtual table work on it as on any other.

What this relies on (SQLite's ``ext/rtree/rtree.c``; checked on SQLite 3.40.1 by the
tests in ``tests/catalog/test_rtree_pack.py``):

* The shadow tables ``<t>_node(nodeno INTEGER PRIMARY KEY, data)``, ``<t>_rowid(rowid
  INTEGER PRIMARY KEY, nodeno)`` and ``<t>_parent(nodeno INTEGER PRIMARY KEY,
  parentnode)`` are writable with plain SQL. That is true unless the connection is in
  ``SQLITE_DBCONFIG_DEFENSIVE`` mode (SQLite >= 3.26 then makes shadow tables read-only:
  the writes fail and :func:`rebuild` raises :class:`StoreError`).
* Node blobs all have the size of the root's blob (read back at connect time, so we reuse
  ``length(data)`` of node 1): bytes 0-1 the tree depth (root only, big-endian), bytes 2-3
  the cell count, then cells of an 8-byte big-endian int64 (rowid in leaves, child nodeno
  in interior nodes) and 4 big-endian float32 (minx, maxx, miny, maxy); the rest is zero.
  The root is node 1; node numbers are otherwise free (SQLite allocates new ones as
  ``max(nodeno) + 1``).
* The virtual table keeps no node cached between statements (the root, hence the depth,
  is re-read by every query and write; its read blob handle is re-opened when stale), so
  the same connection can query and write the table right after the rewrite.
* Coordinates are rounded to float32 the way ``rtreeValueDown`` / ``rtreeValueUp`` do it,
  bit for bit, so a packed table stores exactly what ``INSERT`` would have stored. Where
  SQLite's own rounding would not contain the float64 value (float32 subnormals, values
  beyond the float32 range), we step one float further out, so a query on the original
  float64 box never misses a row.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

import numpy as np

from terrapipe.errors import InvalidInput, StoreError

BYTES_PER_CELL = 24  # int64 id + 2 dimensions x (min, max) float32
MAX_CELLS = 51  # RTREE_MAXCELLS: SQLite never makes nodes with more cells than this
MIN_NODE_SIZE = 448  # SQLite reports smaller blobs as "undersize RTree blobs" (corrupt)
MAX_NODE_SIZE = 4 + BYTES_PER_CELL * MAX_CELLS  # 1228: the size at page sizes >= 2048

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MODULE = re.compile(r"\s*CREATE\s+VIRTUAL\s+TABLE\s.*?\bUSING\s+(\w+)", re.I | re.S)
_RNDTOWARDS = 1.0 - 1.0 / 8388608.0  # rtree.c: round towards zero
_RNDAWAY = 1.0 + 1.0 / 8388608.0  # rtree.c: round away from zero
_CELL = np.dtype([("id", ">i8"), ("box", ">f4", (4,))])
_SAVEPOINT = "terrapipe_rtree_pack"


@dataclass(frozen=True)
class PackedTree:
    """A packed 2-D R*Tree: node blobs and the rows of its ``_rowid`` and ``_parent`` tables.

    ``blobs[i]`` is node ``i + 1`` (the root first); ``rowids`` (ascending) live in leaf
    ``leaf_nodenos``; non-root node ``child_nodenos`` hangs under ``parent_nodenos``.
    """

    blobs: list[bytes]
    depth: int
    rowids: np.ndarray
    leaf_nodenos: np.ndarray
    child_nodenos: np.ndarray
    parent_nodenos: np.ndarray


def pack(
    rowids: np.ndarray, boxes: np.ndarray, max_cells: int, node_size: int | None = None
) -> PackedTree:
    """Pack boxes ``(n, 4)`` as (minx, maxx, miny, maxy) into an STR R*Tree of full nodes.

    Each level has the fewest nodes of at most ``max_cells`` cells, filled evenly;
    ``node_size`` (default ``4 + 24 * max_cells``) is the byte size of every node blob.
    """
    if node_size is None:
        node_size = 4 + BYTES_PER_CELL * max_cells
    if max_cells < 2 or 4 + BYTES_PER_CELL * max_cells > node_size or node_size > 65536:
        raise InvalidInput(f"max_cells={max_cells} does not fit a {node_size}-byte node")
    ids, box32 = _validate(rowids, boxes)
    n = len(ids)
    by_rowid = slice(None) if bool(np.all(ids[1:] > ids[:-1])) else np.argsort(ids)
    sorted_ids = ids[by_rowid]
    dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if len(dup):
        raise InvalidInput(f"duplicate R*Tree rowid {int(sorted_ids[dup[0]])}")
    if n == 0:
        empty = np.empty(0, np.int64)
        return PackedTree([bytes(node_size)], 0, empty, empty, empty, empty)

    # Bottom-up, STR-sorted levels: (order of the items, node boundaries, sorted item boxes).
    levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    bx = box32
    while True:
        starts = _node_starts(len(bx), max_cells)
        order = _str_order(bx, starts)
        sorted_bx = np.take(bx, order, axis=0)
        levels.append((order, starts, sorted_bx))
        bx = np.empty((len(starts) - 1, 4), np.float32)  # the nodes' boxes: unions
        bx[:, 0::2] = np.minimum.reduceat(sorted_bx[:, 0::2], starts[:-1], axis=0)
        bx[:, 1::2] = np.maximum.reduceat(sorted_bx[:, 1::2], starts[:-1], axis=0)
        if len(bx) == 1:
            break

    # Node numbers top-down: the root is 1, then each level below in its STR order.
    depth = len(levels) - 1
    first = [0] * len(levels)
    nodeno = 1
    for lvl in range(depth, -1, -1):
        first[lvl] = nodeno
        nodeno += len(levels[lvl][1]) - 1
    parent_of = np.zeros(nodeno, np.int64)  # indexed by nodeno; 0 and 1 (root) unused
    leaf_of = np.empty(n, np.int64)
    blobs: list[bytes] = []
    for lvl in range(depth, -1, -1):
        order, starts, sorted_bx = levels[lvl]
        owner = first[lvl] + np.repeat(np.arange(len(starts) - 1), np.diff(starts))
        if lvl == 0:
            cell_ids = np.take(ids, order)
            leaf_of[order] = owner
        else:
            cell_ids = first[lvl - 1] + order
            parent_of[cell_ids] = owner
        root_depth = depth if lvl == depth else 0
        blobs.extend(_node_blobs(cell_ids, sorted_bx, starts, node_size, root_depth))
    return PackedTree(
        blobs=blobs,
        depth=depth,
        rowids=sorted_ids,
        leaf_nodenos=leaf_of[by_rowid],
        child_nodenos=np.arange(2, nodeno, dtype=np.int64),
        parent_nodenos=parent_of[2:],
    )


def _node_starts(m: int, max_cells: int) -> np.ndarray:
    """Item boundaries of ceil(m / max_cells) nodes: the first ones one item fuller."""
    p = -(-m // max_cells)
    size, fuller = divmod(m, p)
    sizes = np.full(p, size, np.int64)
    sizes[:fuller] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def _node_blobs(
    cell_ids: np.ndarray, boxes: np.ndarray, starts: np.ndarray, node_size: int, depth: int
) -> list[bytes]:
    """The blobs of one level's nodes; ``depth`` goes into the first (root only: else 0)."""
    p = len(starts) - 1
    sizes = np.diff(starts)
    cells = np.empty(len(cell_ids), _CELL)
    cells["id"] = cell_ids
    cells["box"] = boxes
    raw = cells.view(np.uint8)
    out = np.zeros((p, node_size), np.uint8)
    out[:, 2:4] = sizes.astype(">u2").view(np.uint8).reshape(p, 2)
    out[0, 0:2] = np.frombuffer(depth.to_bytes(2, "big"), np.uint8)
    # _node_starts: a run of nodes of size+1 cells, then a run of size cells
    size = int(sizes[-1])
    fuller = int(np.count_nonzero(sizes > size))
    split = fuller * (size + 1)
    big, small = (size + 1) * BYTES_PER_CELL, size * BYTES_PER_CELL
    if fuller:
        out[:fuller, 4 : 4 + big] = raw[: split * BYTES_PER_CELL].reshape(fuller, big)
    out[fuller:, 4 : 4 + small] = raw[split * BYTES_PER_CELL :].reshape(p - fuller, small)
    buf = out.tobytes()
    return [buf[i : i + node_size] for i in range(0, len(buf), node_size)]


def rebuild(cursor: sqlite3.Cursor, table: str, rowids: np.ndarray, boxes: np.ndarray) -> None:
    """Replace the whole content of 2-D R*Tree ``table`` by the packed tree of these boxes.

    Runs in the caller's transaction (atomically: a failure leaves the table as it was).
    """
    node_size = _node_size(cursor, table)
    tree = pack(rowids, boxes, (node_size - 4) // BYTES_PER_CELL, node_size)
    conn = cursor.connection
    if not conn.in_transaction and _implicit_begin(conn):
        # What the sqlite3 module does before a DELETE: the caller commits or rolls back.
        cursor.execute(f"BEGIN {conn.isolation_level or ''}")
    cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        for shadow in ("node", "parent", "rowid"):
            cursor.execute(f'DELETE FROM "{table}_{shadow}"')
        cursor.executemany(
            f'INSERT INTO "{table}_node" (nodeno, data) VALUES (?, ?)',
            enumerate(tree.blobs, start=1),
        )
        cursor.executemany(
            f'INSERT INTO "{table}_parent" (nodeno, parentnode) VALUES (?, ?)',
            zip(tree.child_nodenos.tolist(), tree.parent_nodenos.tolist(), strict=True),
        )
        cursor.executemany(
            f'INSERT INTO "{table}_rowid" (rowid, nodeno) VALUES (?, ?)',
            zip(tree.rowids.tolist(), tree.leaf_nodenos.tolist(), strict=True),
        )
    except sqlite3.Error as exc:
        cursor.execute(f"ROLLBACK TO {_SAVEPOINT}")
        cursor.execute(f"RELEASE {_SAVEPOINT}")
        hint = " (is the connection in SQLITE_DBCONFIG_DEFENSIVE mode?)"
        raise StoreError(
            f"cannot write the shadow tables of R*Tree {table!r}: {exc}"
            + (hint if "may not be modified" in str(exc) else "")
        ) from exc
    cursor.execute(f"RELEASE {_SAVEPOINT}")


def _validate(rowids: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 rowids and float32 boxes rounded outwards as SQLite does."""
    ids = np.asarray(rowids)
    b = np.asarray(boxes, dtype=np.float64)
    if ids.size == 0 and b.size == 0:  # also [] and [[]]: no rows
        ids, b = np.empty(0, np.int64), b.reshape(0, 4)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise InvalidInput(f"rowids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    if ids.dtype == np.uint64 and len(ids) and ids.max() > np.iinfo(np.int64).max:
        raise InvalidInput("rowids must fit in int64")
    ids = ids.astype(np.int64, copy=False)
    if b.shape != (len(ids), 4):
        raise InvalidInput(f"boxes must have shape ({len(ids)}, 4), got {b.shape}")
    if np.isnan(b).any():
        raise InvalidInput(f"NaN coordinate in the box of rowid {_first(ids, np.isnan(b))}")
    box32 = np.empty(b.shape, np.float32)
    box32[:, 0::2] = _round_down(b[:, 0::2])
    box32[:, 1::2] = _round_up(b[:, 1::2])
    bad = box32[:, 0::2] > box32[:, 1::2]
    if bad.any():
        raise InvalidInput(f"min > max in the box of rowid {_first(ids, bad)}")
    return ids, box32


def _first(ids: np.ndarray, bad: np.ndarray) -> int:
    return int(ids[np.flatnonzero(bad.any(axis=1))[0]])


def _round_down(d: np.ndarray) -> np.ndarray:
    """float32 <= d: ``rtreeValueDown`` of rtree.c, then one step down where that is above d."""
    with np.errstate(over="ignore"):
        f = d.astype(np.float32)
        above = f > d
        if above.any():
            da = d[above]
            f[above] = (da * np.where(da < 0, _RNDAWAY, _RNDTOWARDS)).astype(np.float32)
            _step(f, d, f > d, -np.inf)
    return f


def _round_up(d: np.ndarray) -> np.ndarray:
    """float32 >= d: ``rtreeValueUp`` of rtree.c, then one step up where that is below d."""
    with np.errstate(over="ignore"):
        f = d.astype(np.float32)
        below = f < d
        if below.any():
            db = d[below]
            f[below] = (db * np.where(db < 0, _RNDTOWARDS, _RNDAWAY)).astype(np.float32)
            _step(f, d, f < d, np.inf)
    return f


def _step(f: np.ndarray, d: np.ndarray, wrong: np.ndarray, towards: float) -> None:
    while wrong.any():  # one step suffices; the loop only guards the invariant
        f[wrong] = np.nextafter(f[wrong], np.float32(towards))
        wrong = f > d if towards < 0 else f < d


def _str_order(bx: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sort-Tile-Recursive order: vertical slabs of whole nodes by x centre, y within."""
    p = len(starts) - 1
    if p == 1:
        return np.arange(len(bx))
    lim = float(np.finfo(np.float32).max)
    c = np.clip(bx.astype(np.float64), -lim, lim)
    cx = (c[:, 0] + c[:, 1]) / 2
    cy = (c[:, 2] + c[:, 3]) / 2
    by_x = np.argsort(cx)
    slabs = int(np.ceil(np.sqrt(p)))  # about sqrt(p) slabs of about sqrt(p) nodes each
    slab_bounds = starts[np.arange(slabs + 1) * p // slabs]
    slab = np.repeat(np.arange(slabs, dtype=np.float64), np.diff(slab_bounds))
    lo, hi = cy.min(), cy.max()
    y = (cy[by_x] - lo) / (hi - lo) if hi > lo else np.zeros(len(cy))
    return by_x[np.argsort(2 * slab + y)]  # y in [0, 1]: slabs never interleave


def _implicit_begin(conn: sqlite3.Connection) -> bool:
    """Whether the sqlite3 module would open a transaction itself before a DELETE."""
    autocommit = getattr(conn, "autocommit", -1)  # Python >= 3.12; -1: legacy control
    if autocommit is True:
        return False
    return autocommit is False or conn.isolation_level is not None


def _node_size(cursor: sqlite3.Cursor, table: str) -> int:
    """The node blob size of R*Tree ``table``, after checking it is one we can pack."""
    if not isinstance(table, str) or not _NAME.match(table):
        raise StoreError(f"invalid R*Tree table name {table!r}")
    row = cursor.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
        (table,),
    ).fetchone()
    module = _MODULE.match(row[0] or "") if row else None
    if module is None or module.group(1).lower() != "rtree":
        raise StoreError(f"{table!r} is not an rtree virtual table")
    columns = cursor.execute("SELECT count(*) FROM pragma_table_info(?)", (table,)).fetchone()
    rowid_cols = cursor.execute(
        "SELECT count(*) FROM pragma_table_info(?)", (f"{table}_rowid",)
    ).fetchone()
    if rowid_cols[0] != 2:
        raise StoreError(f"R*Tree {table!r} has auxiliary columns: cannot pack it")
    if columns[0] != 5:
        raise StoreError(f"R*Tree {table!r} is not 2-dimensional: cannot pack it")
    size = cursor.execute(f'SELECT length(data) FROM "{table}_node" WHERE nodeno = 1').fetchone()
    if size is None or size[0] is None or not MIN_NODE_SIZE <= size[0] <= MAX_NODE_SIZE:
        got = "no root node" if size is None or size[0] is None else f"{size[0]} bytes"
        raise StoreError(
            f"R*Tree {table!r}: unexpected node size ({got}, expected "
            f"{MIN_NODE_SIZE}..{MAX_NODE_SIZE})"
        )
    return int(size[0])
