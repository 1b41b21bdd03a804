"""Issue 12: no module of terrapipe imports a private name of another module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import terrapipe

SRC = Path(terrapipe.__file__).parent


@pytest.mark.parametrize(
    "package",
    [
        "api",
        "catalog",
        "cli",
        "core",
        "engines",
        "geo",
        "pipelines",
        "publish",
        "sample",
        "store",
        "transfer",
    ],
)
def test_no_private_name_is_imported_from_another_module(package):
    found = []
    for path in sorted((SRC / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("terrapipe"):
                found += [
                    f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name[0] == "_"
                ]
    assert found == []
