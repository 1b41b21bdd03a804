"""An HTML report of published layers: quicklooks, versions, files and STAC items.

Self-contained apart from the images it links (relative paths, so the folder can be
copied or served as is).
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from terrapipe.publish.layers import Layer
from terrapipe.store.atomic import atomic_write_text

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.6rem} table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ddd;padding:.3rem .6rem;font-size:.9rem;text-align:left}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.8rem;min-width:0}
.card h3{font-size:1rem;overflow-wrap:anywhere} .card li{overflow-wrap:anywhere;font-size:.85rem}
.card img{width:100%;height:auto} .kind{color:#666;font-size:.8rem}
.ok{color:#0a7d2c} .cached{color:#0b6f8a} .failed{color:#b00020}
code{font-size:.8rem;word-break:break-all}
"""


def _rel(path: str | Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path), base)).as_posix()


def render_report(
    layers: Sequence[Layer], runs: Sequence[dict[str, Any]], dest: Path, *, title: str
) -> Path:
    """Write ``dest`` (atomically) and return it."""
    base = dest.parent
    rows = []
    for run in runs:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(run["counts"].items()))
        css = "ok" if run["state"] == "succeeded" else "failed"
        rows.append(
            f"<tr><td>{html.escape(run['workflow'])}</td><td class='{css}'>{run['state']}</td>"
            f"<td>{html.escape(counts)}</td><td><code>{run['run_id']}</code></td></tr>"
        )
    cards = []
    for layer in layers:
        images = [f for f in layer.files if f.endswith(".png")]
        data = [f for f in layer.files if not f.endswith(".png")]
        image = (
            f"<img src='{html.escape(_rel(images[-1], base))}' alt='{html.escape(layer.name)}'>"
            if images
            else ""
        )
        links = "".join(
            f"<li><a href='{html.escape(_rel(f, base))}'>{html.escape(Path(f).name)}</a></li>"
            for f in data
        )
        if len(data) > 4:  # e.g. one NDVI raster per date
            links = (
                f"<li><details><summary>{len(data)} files</summary><ul>{links}</ul></details></li>"
            )
        stac = (
            f"<li><a href='{html.escape(_rel(layer.stac_item, base))}'>STAC item</a></li>"
            if layer.stac_item
            else ""
        )
        cards.append(
            f"<div class='card'><h3>{html.escape(layer.name)}</h3>"
            f"<div class='kind'>{layer.kind} · layer v{layer.layer_version} · algorithm "
            f"v{html.escape(layer.algorithm_version)} · {html.escape(layer.workflow)}</div>"
            f"{image}<ul>{links}{stac}</ul></div>"
        )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        "<h2>Runs</h2><table><tr><th>workflow</th><th>state</th><th>nodes</th><th>run</th></tr>"
        f"{''.join(rows)}</table><h2>Layers</h2><div class='cards'>{''.join(cards)}</div>"
        "</body></html>"
    )
    return atomic_write_text(dest, page)
