"""The catalog's write path, imported on the first save (``import terrapipe.catalog`` does
not load it).

- :mod:`~terrapipe.catalog.load.batch`: upsert one batch; a whole bulk load in one
  transaction.
- :mod:`~terrapipe.catalog.load.bulk`: new rows column by column (SQLite ``executemany``,
  PostgreSQL binary ``COPY``), bypassing the ORM.
- :mod:`~terrapipe.catalog.load.deferred`: drop the indexes for a large load, build each once.
- :mod:`~terrapipe.catalog.load.pgstream`, :mod:`~terrapipe.catalog.load.pgcopy`: a deferred
  PostgreSQL load as one ``COPY`` stream per table, encoded with numpy.
- :mod:`~terrapipe.catalog.load.rtree_pack`: a packed SQLite R*Tree written into its shadow
  tables.
"""
