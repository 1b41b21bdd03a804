"""The SQLite R*Tree of dataset bboxes: row layout and bulk rows in Z-order.

One box per dataset (rowid ``2*id``), two for a bbox crossing the antimeridian
(``west > east``: rowids ``2*id`` and ``2*id+1``).

Who writes the R*Tree, and when (there is no insert trigger: it would halve the bulk
insert rate):

- ``save_datasets`` / ``save_batch`` (every harvest and incremental save): the new rows'
  boxes, Z-ordered (fewer node splits), inserted by
  :func:`terrapipe.catalog.load.bulk.insert_sqlite` from :func:`box_arrays`.
- A deferred bulk load (``save_datasets(..., bulk_load=True)`` as large as the catalog):
  the whole tree rebuilt once at the end, packed straight into its shadow tables
  (:mod:`terrapipe.catalog.load.rtree_pack`; row inserts when those are read-only).
- An ORM insert of a ``DatasetRecord`` (tests and ad-hoc scripts): the ``after_insert``
  listener in :mod:`terrapipe.catalog.models`, with :data:`INSERT_SQL`.
- Updates of the bbox columns and deletes: the triggers of migration 0002.

A raw Core ``INSERT INTO datasets`` outside these paths is not spatially indexed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TABLE = "datasets_rtree"
INSERT_SQL = f"INSERT INTO {TABLE} (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)"

Row = tuple[int, float, float, float, float]


def rtree_rows(dataset_id: int, west: float, south: float, east: float, north: float) -> list[Row]:
    """The R*Tree rows of one bbox."""
    if west <= east:
        return [(2 * dataset_id, west, east, south, north)]
    return [
        (2 * dataset_id, west, 180.0, south, north),
        (2 * dataset_id + 1, -180.0, east, south, north),
    ]


def box_arrays(ids: Sequence[int], bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R*Tree rowids and boxes (minx, maxx, miny, maxy) of many bboxes, in Z-order.

    ``bounds`` are (west, south, east, north) rows; NaN rows (no footprint) are skipped and
    a bbox crossing the antimeridian gives two boxes (rowids ``2*id`` and ``2*id+1``).
    """
    b = np.asarray(bounds, dtype=float).reshape(-1, 4)
    keep = ~np.isnan(b).any(axis=1)
    ids_arr = np.asarray(ids, dtype=np.int64)[keep]
    b = b[keep]
    order = np.argsort(_zorder((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2), kind="stable")
    ids_arr, b = ids_arr[order], b[order]
    west, south, east, north = b.T
    crossing = west > east
    rowids = np.concatenate([ids_arr * 2, ids_arr[crossing] * 2 + 1])
    boxes = np.concatenate(
        [
            np.column_stack([west, np.where(crossing, 180.0, east), south, north]),
            np.column_stack(
                [np.full(crossing.sum(), -180.0), east[crossing], south[crossing], north[crossing]]
            ),
        ]
    )
    return rowids, boxes


def bulk_rows(ids: Sequence[int], bounds: np.ndarray) -> list[Row]:
    """R*Tree rows for many datasets (``bounds``: west, south, east, north), Z-ordered."""
    rowids, boxes = box_arrays(ids, bounds)
    return list(zip(rowids.tolist(), *boxes.T.tolist(), strict=True))


def _zorder(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Morton keys of lon/lat points on a 65536 x 65536 grid."""
    xi = np.clip((x + 180.0) / 360.0 * 65535, 0, 65535).astype(np.uint64)
    yi = np.clip((y + 90.0) / 180.0 * 65535, 0, 65535).astype(np.uint64)
    return _spread(xi) | (_spread(yi) << np.uint64(1))


def _spread(v: np.ndarray) -> np.ndarray:
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
    return (v | (v << np.uint64(1))) & np.uint64(0x55555555)
