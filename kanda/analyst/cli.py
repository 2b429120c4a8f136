"""`kanda keys ...`: API keys for analysts (create, list, revoke). See `kanda.analyst.keys`."""

from __future__ import annotations

from typing import Annotated

import typer

keys_app = typer.Typer(help="API keys for analysts (the read-only API under /api).", no_args_is_help=True)


def _store():
    from kanda.analyst.keys import KeyStore
    from kanda.settings import load_settings

    return KeyStore(load_settings().app_db_url)


@keys_app.command("create")
def create(name: Annotated[str, typer.Argument(help="Who or what the key is for, e.g. amina or metabase.")]) -> None:
    """Create a key and print it once; only its hash is kept, so store it now."""
    from kanda.analyst.keys import KeyProblem
    from kanda.cli_support import console, err, fail

    try:
        token = _store().create(name)
    except KeyProblem as exc:
        fail(str(exc))
    err.print(f"API key for {name} (shown once, store it now):")
    console.print(token, markup=False, highlight=False, soft_wrap=True)
    err.print("use it as `Authorization: Bearer <key>` or `X-API-Key: <key>` on /api (docs at /docs)")


@keys_app.command("list")
def list_keys() -> None:
    """Every key ever created: name, first characters, created, revoked."""
    from rich.table import Table

    from kanda.cli_support import console

    keys = _store().list()
    if not keys:
        console.print("no API keys yet: `kanda keys create NAME`")
        return
    table = Table(title="API keys")
    for column in ("name", "key starts", "created (UTC)", "status"):
        table.add_column(column)
    for key in keys:
        status = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(key.name, key.hint + "...", f"{key.created_at:%Y-%m-%d %H:%M}", status)
    console.print(table)


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name (see `kanda keys list`).")]) -> None:
    """Revoke a key at once: the next request with it gets 401. The name stays listed."""
    from kanda.analyst.keys import KeyProblem
    from kanda.cli_support import console, fail

    try:
        key = _store().revoke(name)
    except KeyProblem as exc:
        fail(str(exc))
    console.print(f"revoked {key.name} ({key.hint}...) at {key.revoked_at:%Y-%m-%d %H:%M} UTC")
