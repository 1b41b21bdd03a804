"""Catalog data is printed as text, never parsed as rich markup (issue 10, item 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terrapipe.cli.main import main

ITEM_ID = "markup[/]id"
LINK_KEY = "[link=https://evil.example/]click[/link]"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def hostile_item(tmp_path: Path) -> Path:
    """A STAC item whose id, title, platform and a property key look like rich markup."""
    doc = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": ITEM_ID,
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[5, 45], [6, 45], [6, 46], [5, 46], [5, 45]]],
        },
        "bbox": [5, 45, 6, 46],
        "properties": {
            "datetime": "2024-06-01T00:00:00Z",
            "title": "[bold red]loud[/]",
            "platform": "[/]",
            LINK_KEY: 1,
        },
        "links": [],
        "assets": {"data": {"href": "https://data.example.org/[/]x.tif", "roles": ["data"]}},
    }
    path = tmp_path / "item.json"
    path.write_text(json.dumps(doc))
    return path


def test_search_and_show_print_markup_like_data_literally(
    db, capsys, hostile_item: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one table row per dataset, nothing folded
    code, out, _ = run(capsys, "catalog", "harvest", str(hostile_item))
    assert code == 0, out

    code, out, err = run(capsys, "catalog", "search")
    assert code == 0, err
    assert ITEM_ID in out and "[/]" in out.replace(ITEM_ID, "")

    code, out, err = run(capsys, "catalog", "search", "-q", json.dumps({"properties__[/]": 1}))
    assert (code, err) == (0, "")
    assert "0 dataset(s)" in out

    code, out, err = run(capsys, "catalog", "show", ITEM_ID)
    assert code == 0, err
    assert f"entry_id: {ITEM_ID}" in out
    assert "title: [bold red]loud[/]" in out
    assert "platform: [/]" in out
    assert json.dumps(LINK_KEY) in out  # the key, literally, not a hyperlink "click"
    assert "\x1b]8;" not in out
    assert "https://data.example.org/[/]x.tif" in out
