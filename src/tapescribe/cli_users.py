"""`tapescribe users ...`: add, list and remove the people of a library, their tokens and passwords.

They work on data/users.json directly, also while `serve` runs (it reads the file again when it
changes, so a user added here can sign in at once).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tapescribe.sessions.users import UserStore

_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default ./data, or TAPESCRIBE_DATA_DIR).",
)


def _store(data_dir: Path | None) -> UserStore:
    from tapescribe.cli import make_settings

    settings = make_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return UserStore(settings.data_dir)


def _read_password(name: str) -> str:
    """From a prompt on a terminal (asked twice), else the first line of stdin."""
    if sys.stdin.isatty():
        return click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@click.group()
def users() -> None:
    """Manage the people who can sign in (each sees only their own recordings)."""


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May manage users (the first user always is).")
@click.option("--password", "with_password", is_flag=True, help="Also set a password (read from stdin / a prompt).")
@_data_dir_option
def users_add(name, admin, with_password, data_dir) -> None:
    """Add a user; the last line printed is their API token (shown only this once)."""
    store = _store(data_dir)
    password = _read_password(name) if with_password else None
    user, token = store.add(name.strip().lower(), admin=admin, password=password)
    role = "admin" if user.admin else "member"
    click.echo(f"added {user.name} ({role}); set a password with: tapescribe users passwd {user.name}", err=True)
    click.echo(token)


@users.command("list")
@_data_dir_option
def users_list(data_dir) -> None:
    """Every user: name, role, whether a password is set."""
    for user in _store(data_dir).users():
        role = "admin" if user.admin else "member"
        password = "password set" if user.password_hash else "no password"
        click.echo(f"{user.name}\t{role}\t{password}\t{user.created[:19]}")


@users.command("remove")
@click.argument("name")
@_data_dir_option
def users_remove(name, data_dir) -> None:
    """Remove a user: they can no longer sign in (their recordings stay on disk)."""
    _store(data_dir).remove(name)
    click.echo(f"removed {name}")


@users.command("token")
@click.argument("name")
@_data_dir_option
def users_token(name, data_dir) -> None:
    """A new API token for NAME (printed as the last line); the old one stops working at once."""
    click.echo(_store(data_dir).new_token(name))


@users.command("passwd")
@click.argument("name")
@_data_dir_option
def users_passwd(name, data_dir) -> None:
    """Set NAME's password (read from a prompt, or the first line of stdin); signs their browsers out."""
    store = _store(data_dir)
    if store.get(name) is None:
        raise click.ClickException(f"There is no user {name!r}.")
    store.set_password(name, _read_password(name))
    click.echo(f"password set for {name}")
