"""``terrapipe sample-data DIR``: generate the fictional sample region into a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from terrapipe.cli.output import console, print_json, text
from terrapipe.cli.render import line


def sample_data(
    directory: Path = typer.Argument(..., help="Folder to write the sample region into."),
    seed: int = typer.Option(42, "--seed", help="Random seed (same seed, same files)."),
    json_output: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Generate the deterministic sample region (no-op if the folder is already complete)."""
    from terrapipe.sample import generate_sample_region

    manifest = generate_sample_region(directory, seed=seed)
    if json_output:
        print_json(manifest.to_dict())
        return
    out = console()
    out.print(line(f"sample region (seed {seed}) in ", text(manifest.directory, "bold")))
    for key, rel in manifest.data["files"].items():
        out.print(text(f"  {key:<18} {rel}"))
    bands = len(manifest.data["bands"])
    out.print(text(f"  {'bands':<18} red/NIR for {bands} dates under optical/"))
    out.print(text(f"  example ROI: {manifest.data['example_roi']}"))


def register(root: typer.Typer) -> None:
    """Add ``sample-data`` to the root ``terrapipe`` app."""
    root.command("sample-data")(sample_data)
