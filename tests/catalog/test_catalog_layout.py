"""The catalog's bulk write path is loaded only when something is saved."""

from __future__ import annotations

import json
import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_catalog_does_not_load_the_write_path() -> None:
    loaded = _modules_after("import terrapipe.catalog, terrapipe.catalog.query")
    assert "terrapipe.catalog" in loaded
    write_path = {"load", "batch", "bulk", "deferred", "pgcopy", "pgstream", "rtree_pack"}
    catalog_modules = {m.split(".")[-1] for m in loaded if m.startswith("terrapipe.catalog.")}
    assert not catalog_modules & write_path


def test_the_first_save_loads_it(tmp_path) -> None:
    code = (
        "import shapely\nfrom terrapipe.catalog import Dataset, save_datasets\n"
        "from terrapipe.store.db import Database\n"
        f"db = Database('sqlite:///{tmp_path / 'c.db'}')\n"
        "save_datasets(db, [Dataset(entry_id='a', footprint=shapely.Point(1, 2))])\n"
    )
    loaded = _modules_after(code)
    assert {"terrapipe.catalog.load.batch", "terrapipe.catalog.load.bulk"} <= loaded
