"""The store collects every area's tables through entry points, never by importing them."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_store_imports_no_area_by_name() -> None:
    probe = (
        "import json, sys\n"
        "import terrapipe.store.models, terrapipe.store.runstore\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('terrapipe.'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not {"terrapipe.catalog.models", "terrapipe.publish.models", "terrapipe.api.models"} & (
        loaded
    )


def test_load_tables_gives_the_complete_metadata() -> None:
    from terrapipe.store.db import load_tables

    tables = set(load_tables().tables)
    assert {"runs", "nodes", "cache_entries", "artifacts"} <= tables  # core
    assert {"datasets", "dataset_uris"} <= tables  # catalog
    assert {"layers", "api_tokens"} <= tables  # layers, service
