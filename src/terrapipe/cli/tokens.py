"""``terrapipe tokens create|list|revoke``: bearer tokens for the HTTP service."""

from __future__ import annotations

import typer
from rich.table import Table

from terrapipe.cli.output import console, print_json

app = typer.Typer(help="API tokens (TERRAPIPE_AUTH=on).", no_args_is_help=True)


@app.command("create")
def create_command(name: str = typer.Argument(..., help="Who or what the token is for.")) -> None:
    """Create a token and print it once; only its hash is stored."""
    from terrapipe.api.tokens import create_token
    from terrapipe.store import open_database

    with open_database() as db:
        token = create_token(db, name)
    typer.echo(token)
    typer.echo("Keep it: it is shown only now. Send it as `Authorization: Bearer TOKEN`.", err=True)


@app.command("list")
def list_command(json_output: bool = typer.Option(False, "--json")) -> None:
    """Tokens by name, with when they were created and revoked."""
    from terrapipe.api.tokens import list_tokens
    from terrapipe.store import open_database

    with open_database() as db:
        tokens = list_tokens(db)
    if json_output:
        print_json(
            [
                {"name": t.name, "created_at": t.created_at, "revoked_at": t.revoked_at}
                for t in tokens
            ]
        )
        return
    table = Table("name", "created", "state")
    for t in tokens:
        table.add_row(
            t.name,
            t.created_at.strftime("%Y-%m-%d %H:%M"),
            "active" if t.active else f"revoked {t.revoked_at:%Y-%m-%d %H:%M}",
        )
    console().print(table)


@app.command("revoke")
def revoke_command(name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    from terrapipe.api.tokens import revoke_token
    from terrapipe.store import open_database

    with open_database() as db:
        revoke_token(db, name)
    typer.echo(f"revoked {name}")
