"""Persistence: the SQLAlchemy database (runs, nodes, cache, catalog, layers) and artifacts."""

from terrapipe.store.db import Base, Database, open_database

__all__ = ["Base", "Database", "open_database"]
