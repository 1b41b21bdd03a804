"""``terrapipe download`` and ``terrapipe copy``: thin over terrapipe.transfer.

Options follow the tools they replace: ``-d/--destination_path``, ``-b/--begin``,
``-e/--end``, ``-r/--rel_time_flag``, ``-g/--geometry``, ``-q/--query``; for download
``-c/--config_file``, ``-s/--safety_limit``, ``-a/--save_path``; for copy ``-l/--link``,
``-t/--type``, ``-f/--flag_file``, ``-ttl/--time_to_live``.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from terrapipe.cli.output import console, print_json, show_progress, text
from terrapipe.cli.render import line
from terrapipe.errors import DownloadError, InvalidInput

DEST = typer.Option(".", "-d", "--destination_path", help="Folder (strftime patterns allowed).")
BEGIN = typer.Option(None, "-b", "--begin", help="Start time (date/datetime; a span with -r).")
END = typer.Option(None, "-e", "--end", help="End time (date/datetime; a span with -r).")
REL = typer.Option(
    False, "-r", "--rel_time_flag", help="-b/-e are spans back from now: 7d, 12h, 30m (or hours)."
)
GEOM = typer.Option(None, "-g", "--geometry", help="WKT, GeoJSON or 'west,south,east,north'.")
QUERY = typer.Option(
    None, "-q", "--query", help='Catalog lookups as JSON: \'{"collection": "s2"}\'.'
)
JSON_OUT = typer.Option(False, "--json", help="Print one JSON document.")


def criteria_from_options(
    query: str | None, begin: str | None, end: str | None, relative: bool, geometry: str | None
) -> dict[str, Any]:
    """Catalog criteria from the command-line options (checked, with messages naming them)."""
    criteria: dict[str, Any] = {}
    if query:
        try:
            parsed = json.loads(query)
        except ValueError as exc:
            raise InvalidInput(f"invalid --query {query!r}: not JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise InvalidInput(f"invalid --query {query!r}: expected a JSON object")
        criteria.update(parsed)
    if relative:
        from terrapipe.catalog.timespan import parse_relative

        now = datetime.now(UTC)

        def back(span: str, name: str) -> datetime:
            text = span.strip()
            text = f"{text}h" if text.replace(".", "", 1).isdigit() else text
            try:
                return now - parse_relative(text)
            except InvalidInput as exc:
                raise InvalidInput(f"invalid {name} {span!r} with -r: {exc}") from None

        if begin is not None:
            criteria["begin"] = back(begin, "--begin")
        if end is not None:
            criteria["end"] = back(end, "--end")
    else:
        if begin is not None:
            criteria["begin"] = begin
        if end is not None:
            criteria["end"] = end
    if geometry:
        criteria["geometry"] = geometry
    return criteria


class _Bars:
    """A rich progress bar per file and one overall (bytes), fed from worker threads."""

    def __init__(self, progress) -> None:
        self.progress = progress
        self.overall = progress.add_task("all files", total=None)
        self.files: dict[str, tuple[Any, int, int | None]] = {}
        self.lock = threading.Lock()

    def __call__(self, name: str, done: int, total: int | None) -> None:
        with self.lock:
            task, before, _ = self.files.get(name, (None, 0, None))
            if task is None:
                task = self.progress.add_task(name, total=total)
            self.files[name] = (task, done, total)
            # overall: known sizes, and bytes so far of files of unknown size
            overall = sum(t if t is not None else d for _, d, t in self.files.values())
            self.progress.update(task, completed=done, total=total)
            self.progress.update(self.overall, advance=done - before, total=overall)


def _progress():
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console(),
        transient=False,
    )


def download_command(
    destination_path: str = DEST,
    begin: str | None = BEGIN,
    end: str | None = END,
    rel_time_flag: bool = REL,
    geometry: str | None = GEOM,
    query: str | None = QUERY,
    config_file: Path | None = typer.Option(
        None, "-c", "--config_file", help="Provider settings YAML (credentials, limits)."
    ),
    safety_limit: int = typer.Option(
        100, "-s", "--safety_limit", help="Refuse (download nothing) above this many datasets."
    ),
    save_path: bool = typer.Option(
        False, "-a", "--save_path", help="Record the local path as a URI in the catalog."
    ),
    max_size: str | None = typer.Option(
        None,
        "--max-size",
        help="Refuse any file larger than this (bytes, or 500MB, 2GiB); default: the size "
        "the catalog declares, else the setting download_max_size.",
    ),
    json_output: bool = JSON_OUT,
) -> None:
    """Download the datasets matching the criteria (resumable, verified, skipping done ones)."""
    from terrapipe.transfer.manager import DownloadManager
    from terrapipe.transfer.policy import TransferOptions, parse_size

    criteria = criteria_from_options(query, begin, end, rel_time_flag, geometry)
    limits = {} if max_size is None else {"max_file_size": parse_size(max_size, name="--max-size")}
    manager = DownloadManager(
        destination_path,
        provider_settings_path=config_file,
        max_downloads=safety_limit,
        save_path=save_path,
        options=TransferOptions.from_settings(**limits),
        **criteria,
    )
    with manager:
        if show_progress(json_output):
            with _progress() as progress:
                report = manager.download(progress=_Bars(progress), raise_on_error=False)
        else:
            report = manager.download(raise_on_error=False)
    if json_output:
        print_json(report.to_dict())
    else:
        out = console()
        out.print(
            f"downloaded {len(report.downloaded)}, skipped {len(report.skipped)} "
            f"(already there), failed {len(report.failed)}"
        )
        for key, path in {**report.downloaded, **report.skipped}.items():
            out.print(line("  ", str(key), ": ", str(path)), highlight=False)
        for key, why in report.failed.items():
            out.print(line("  ", text(f"{key} failed", "red"), ": ", str(why)), highlight=False)
    if report.failed:
        # a TerrapipeError, not typer.Exit: main() maps it to exit code 1
        failures = sorted(report.failed.items())
        raise DownloadError(f"{len(failures)} dataset(s) failed to download", failures)


def copy_command(
    destination_path: str = DEST,
    begin: str | None = BEGIN,
    end: str | None = END,
    rel_time_flag: bool = REL,
    geometry: str | None = GEOM,
    query: str | None = QUERY,
    link: bool = typer.Option(False, "-l", "--link", help="Symlink instead of copying."),
    file_type: str | None = typer.Option(
        None, "-t", "--type", help="Only files with this extension (e.g. nc, tif)."
    ),
    flag_file: bool = typer.Option(
        False, "-f", "--flag_file", help="Write NAME.flag with the dataset's metadata."
    ),
    time_to_live: float | None = typer.Option(
        None, "-ttl", "--time_to_live", help="First delete your copies older than this (days)."
    ),
    json_output: bool = JSON_OUT,
) -> None:
    """Copy (or link) already downloaded files of the matching datasets to a folder."""
    from terrapipe.store import open_database
    from terrapipe.transfer.copies import copy_datasets

    criteria = criteria_from_options(query, begin, end, rel_time_flag, geometry)
    with open_database() as db:
        report = copy_datasets(
            db,
            criteria,
            destination_path,
            link=link,
            file_type=file_type,
            flag_file=flag_file,
            time_to_live=time_to_live,
        )
    if json_output:
        print_json(report.to_dict())
    else:
        out = console()
        out.print(f"copied {len(report.copied)}, not downloaded {len(report.not_downloaded)}")
        for entry, path in report.copied.items():
            out.print(line("  ", str(entry), ": ", str(path)), highlight=False)


def register(root: typer.Typer) -> None:
    """Add the top-level ``download`` and ``copy`` commands."""
    root.command("download")(download_command)
    root.command("copy")(copy_command)
