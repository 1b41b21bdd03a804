"""``terrapipe catalog``: harvest, search, show and retry-failed, thin over terrapipe.catalog."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from terrapipe.catalog.dataset import SUMMARY_FIELDS, Dataset
from terrapipe.catalog.query import DEFAULT_LIMIT, get_dataset, search
from terrapipe.cli.output import Column, console, print_json, safe, show_progress, table
from terrapipe.errors import HarvestError, QueryError
from terrapipe.store import open_database

if TYPE_CHECKING:
    from terrapipe.catalog.harvest import HarvestReport

app = typer.Typer(
    help="The dataset catalog: harvest, search and show datasets.", no_args_is_help=True
)


@app.command("harvest")
def harvest_command(
    source: str = typer.Argument(
        ...,
        help="Folder, STAC catalog/collection file or URL, STAC API URL, or a directory "
        "listing (HTTP(S) index page, ftp:// folder).",
    ),
    collection: str | None = typer.Option(
        None, "--collection", help="Collection name for every item."
    ),
    search_json: str | None = typer.Option(
        None,
        "--search",
        help='STAC API search parameters as JSON, e.g. \'{"collections": ["x"]}\'.',
    ),
    depth: int = typer.Option(
        3, "--depth", help="Directory listings: how many folders below SOURCE to crawl."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Harvest datasets from SOURCE (idempotent: known entry ids are updated)."""
    from terrapipe.catalog.harvest import harvest  # rasterio/pyogrio load only when needed

    params = _json_object(search_json, "--search") if search_json else None
    options = {"collection": collection, "search": params, "max_depth": depth}
    with open_database() as db:
        if show_progress(json_output):
            report = _with_progress(lambda cb: harvest(db, source, progress=cb, **options))
        else:
            report = harvest(db, source, **options)
    _print_report(report, json_output)


@app.command("retry-failed")
def retry_failed_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Try every failed item again."""
    from terrapipe.catalog.harvest import retry_failed

    with open_database() as db:
        if show_progress(json_output):
            report = _with_progress(lambda cb: retry_failed(db, progress=cb))
        else:
            report = retry_failed(db)
    _print_report(report, json_output)


@app.command("search")
def search_command(
    query: str | None = typer.Option(
        None, "-q", "--query", help='Lookups as JSON, e.g. \'{"collection": "landsat"}\'.'
    ),
    begin: str | None = typer.Option(
        None, "-b", "--begin", help="Start of the time window (date or datetime)."
    ),
    end: str | None = typer.Option(
        None, "-e", "--end", help="End of the time window (a date includes that day)."
    ),
    relative: str | None = typer.Option(
        None, "-r", "--relative", help="The last N days/hours, e.g. 7d, 12h."
    ),
    geometry: str | None = typer.Option(
        None, "-g", "--geometry", help="WKT, GeoJSON or minx,miny,maxx,maxy."
    ),
    limit: int = typer.Option(DEFAULT_LIMIT, "--limit", help="Most datasets to return."),
    offset: int = typer.Option(0, "--offset", help="Datasets to skip."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Search datasets by attributes, time overlap and footprint intersection."""
    criteria = _json_object(query, "-q") if query else None
    with open_database() as db:
        found = search(
            db,
            criteria,
            begin=begin,
            end=end,
            relative=relative,
            geometry=geometry,
            limit=limit,
            offset=offset,
        )
    if json_output:
        print_json([d.to_dict() for d in found])
        return
    rows = [
        [
            str(d.id),
            d.entry_id,
            d.collection or "",
            d.platform or "",
            d.instrument or "",
            d.time_start.isoformat() if d.time_start else "",
            str(len(d.uris)),
        ]
        for d in found
    ]
    keys = [Column("id", key=True), Column("entry_id", key=True)]
    others = ["collection", "platform", "instrument", "time_start", "uris"]
    out = console()
    out.print(table([*keys, *others], rows))  # data as Text, names kept whole
    out.print(f"{len(found)} dataset(s)")


@app.command("show")
def show_command(
    dataset: str = typer.Argument(..., help="Dataset id or entry_id."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show one dataset with its URIs."""
    with open_database() as db:
        found = get_dataset(db, dataset)
    if json_output:
        print_json(found.to_dict())
        return
    _print_dataset(found)


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QueryError(
            f"invalid JSON for {option} {text!r}: {exc.msg} at column {exc.colno}"
        ) from None
    if not isinstance(value, dict):
        raise QueryError(f"invalid JSON for {option} {text!r}: expected an object {{...}}")
    return value


def _with_progress(job: Any) -> HarvestReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("harvesting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:
        task = bar.add_task("harvest", total=None)

        def callback(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        return job(callback)


def _print_report(report: HarvestReport, json_output: bool) -> None:
    if json_output:
        print_json(report.to_dict())
    else:
        out = console()
        counts = f"{report.added} added, {report.updated} updated, {report.failed} failed"
        out.print(f"{report.source}: {counts}", markup=False, highlight=False)
        for failure in report.failures:
            out.print(
                f"  failed {failure.entry_id}: {failure.error}", markup=False, highlight=False
            )
    if report.failed:
        raise HarvestError(
            f"{report.failed} of {report.total} item(s) failed (kept with their error; "
            "`terrapipe catalog retry-failed` tries them again)"
        )


def _print_dataset(d: Dataset) -> None:
    out = console()
    doc = d.to_dict()
    for key in SUMMARY_FIELDS:
        if doc[key] is not None:
            out.print(f"[bold]{key}[/]: {escape(safe(doc[key]))}", highlight=False)
    if d.properties:
        text = json.dumps(d.properties, sort_keys=True, default=str)
        out.print(f"[bold]properties[/]: {escape(safe(text))}", highlight=False)
    for u in d.uris:
        extra = f" ({u.size} bytes)" if u.size is not None else ""
        local = f" -> {u.local_path}" if u.local_path else ""
        out.print(f"  [{u.role}] {u.uri}{extra}{local}", markup=False, highlight=False)
