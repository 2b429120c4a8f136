"""`kanda users ...`: create and manage the accounts that sign in to the steward pages.

Passwords are never taken as arguments (they would land in shell history and `ps`): they are prompted for, hidden
and confirmed, or read from standard input with `--password-stdin` for scripts.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from kanda.cli_support import usage_error

users_app = typer.Typer(help="Steward and viewer accounts for the steward pages.", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _fail(message: str) -> None:
    """A value the command cannot take (the account, region or address given): Typer's usage box, exit 2."""
    usage_error(message)


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name (lower-case letters, digits, . _ @ -).")],
    role: Annotated[str, typer.Option(help="steward (reviews and fixes) or viewer (reads only).")] = "steward",
    region: Annotated[
        list[str] | None, typer.Option("--region", "-r", help="Region the user may see (repeatable).")
    ] = None,
    all_regions: Annotated[
        bool, typer.Option("--all-regions", help="Every region, including ones added later.")
    ] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account scoped to some regions (--region KE --region TZ) or to all (--all-regions)."""
    from kanda.review.accounts import AccountError, create_user
    from kanda.settings import load_settings

    if bool(region) == all_regions:
        _fail("give --region (one or more) or --all-regions, not both and not neither")
    password = _password(password_stdin)
    try:
        account = create_user(
            load_settings(),
            name,
            password,
            role=role,
            regions=None if all_regions else region,  # type: ignore[arg-type]
        )
    except AccountError as exc:
        _fail(str(exc))
    typer.echo(f"created {account.role} {account.name} (regions: {account.regions_label})")


@users_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every account with its role, regions and whether it may sign in."""
    from rich.console import Console
    from rich.table import Table

    from kanda.review.accounts import list_users
    from kanda.settings import load_settings

    accounts = list_users(load_settings())
    if as_json:
        typer.echo(json.dumps({"users": [a.as_json() for a in accounts]}, indent=2))
        return
    table = Table("name", "role", "regions", "active", "created (UTC)")
    for a in accounts:
        table.add_row(a.name, a.role, a.regions_label, "yes" if a.active else "no", f"{a.created_at:%Y-%m-%d %H:%M}")
    Console(width=None if sys.stdout.isatty() else 120).print(table)


@users_app.command("passwd")
def passwd(name: Annotated[str, typer.Argument(help="User name.")], password_stdin: PasswordStdin = False) -> None:
    """Set a new password; the user's open sessions end."""
    from kanda.review.accounts import AccountError, get_user, set_password
    from kanda.settings import load_settings

    settings = load_settings()
    if get_user(settings, name) is None:
        _fail(f"no user named {name!r}")
    try:
        set_password(settings, name, _password(password_stdin))
    except AccountError as exc:
        _fail(str(exc))
    typer.echo(f"password changed for {name}")


@users_app.command("deactivate")
def deactivate(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Stop a user from signing in (open sessions end at once); the account stays for the audit history."""
    from kanda.review.accounts import AccountError
    from kanda.review.accounts import deactivate as run
    from kanda.settings import load_settings

    try:
        run(load_settings(), name)
    except AccountError as exc:
        _fail(str(exc))
    typer.echo(f"deactivated {name}")


@users_app.command("digest")
def digest(
    name: Annotated[str, typer.Argument(help="User name.")],
    on: Annotated[bool, typer.Option("--on/--off", help="Receive the daily review digest, or stop it.")] = True,
    email: Annotated[str | None, typer.Option("--email", help="Address the digest goes to.")] = None,
) -> None:
    """Opt in or out of the stewards' daily digest e-mail (and set its address)."""
    from kanda.review.accounts import AccountError, set_digest
    from kanda.settings import load_settings

    try:
        account = set_digest(load_settings(), name, on=on, email=email)
    except AccountError as exc:
        _fail(str(exc))
    where = account.address or "no address yet: add --email"
    typer.echo(f"digest {'on' if account.digest else 'off'} for {account.name} ({where})")
