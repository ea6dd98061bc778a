"""`casework user ...`: people and API clients, their passwords, lock-outs and API tokens.

Passwords are read from standard input (`--password-stdin`, or a hidden prompt at a terminal),
so they never sit in the shell's history. A token's secret is printed once, when it is issued.
"""
from __future__ import annotations

import getpass
import sys
from datetime import datetime, timedelta

import click

from workflows import accounts
from workflows.errors import CaseworkError
from workflows.model import ApiToken

from .cli import _app, _describe, _services, main


class _UserCommands(click.Group):
    """Bad input exits 1 with its message, whichever part is wrong (click's usage errors would exit 2)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            err.exit_code = 1
            raise


def _actor() -> str:
    """Who runs the command, as the accounts' records name them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in this environment (a container, a bare CI runner)
        return "cli"


def _read_password() -> str:
    """The password typed at a hidden prompt, or the first line of standard input."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise click.ClickException("No standard input to read the password from; pipe it in, e.g. "
                                   "`printf '%s\\n' \"$PASSWORD\" | casework user password NAME --password-stdin`.")
    if stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = stdin.readline()
    if not line:
        raise click.ClickException("Standard input was empty: give the password as its first line.")
    return line.rstrip("\r\n")


def _run(action):
    """Run an account action; a refusal becomes one clear line and exit 1, never a traceback."""
    try:
        return action(_services(_app()))
    except CaseworkError as err:
        raise click.ClickException(_describe(err)) from err


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "-"


@main.group(cls=_UserCommands)
def user():
    """User commands: add, password, unlock, deactivate, activate, list, token."""


@user.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="Role to grant; repeat for several.")
@click.option("--display-name", default="")
@click.option("--password-stdin", is_flag=True,
              help="Read a password for signing in to the web pages from standard input (without one the "
                   "user has an API token only).")
@click.option("--password", default=None, hidden=True,
              help="The password on the command line (kept in the shell's history: prefer --password-stdin).")
@click.option("--setting", "settings", multiple=True,
              help="Setting whose cases the user may see (e.g. acute_hospital); repeat for several. Default: every setting.")
def user_add(name: str, roles: tuple[str, ...], display_name: str, password_stdin: bool, password: str | None,
             settings: tuple[str, ...]):
    """Create a user and print their API token (shown once)."""
    if password_stdin and password is not None:
        raise click.UsageError("Give the password either with --password-stdin or with --password, not both.")
    if password_stdin:
        password = _read_password()
    created, secret = _run(lambda services: accounts.add_user(
        services, username=name, roles=list(roles), display_name=display_name, password=password,
        settings=list(settings) or None, actor=_actor()))
    click.echo(f"Created {created.username} ({', '.join(created.roles)}). API token (shown once):")
    click.echo(secret)


@user.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def user_password(name: str, password_stdin: bool):
    """Give a user a new password; their open sessions end."""
    if not password_stdin:
        raise click.UsageError("Give the new password on standard input with --password-stdin "
                               "(a password on the command line would stay in the shell's history).")
    password = _read_password()
    _run(lambda services: accounts.set_password(services, username=name, password=password, actor=_actor()))
    click.echo(f"{name} has a new password; their open sessions have ended.")


@user.command("unlock")
@click.argument("name")
def user_unlock(name: str):
    """Lift a lock-out after too many wrong passwords."""
    unlocked = _run(lambda services: accounts.unlock(services, username=name, actor=_actor()))
    click.echo(f"{unlocked.username} can sign in again.")


@user.command("deactivate")
@click.argument("name")
def user_deactivate(name: str):
    """Stop a user: their sessions end and their API tokens are refused."""
    changed = _run(lambda services: accounts.update_user(services, username=name, active=False, actor=_actor()))
    click.echo(f"{changed.username} is deactivated: signed out everywhere, API tokens refused.")


@user.command("activate")
@click.argument("name")
def user_activate(name: str):
    """Let a deactivated user sign in and use their API tokens again."""
    changed = _run(lambda services: accounts.update_user(services, username=name, active=True, actor=_actor()))
    click.echo(f"{changed.username} is active again.")


@user.command("list")
def user_list():
    """List every user: roles, settings, and whether they are active or locked."""
    services = _services(_app())
    now = services.clock.now()
    for person in accounts.list_users(services):
        state = "active" if person.active else "deactivated"
        if person.locked_until is not None and person.locked_until > now:
            state += f", locked until {_when(person.locked_until)}"
        click.echo(f"{person.username}\t{person.display_name}\t{','.join(person.roles)}\t"
                   f"{','.join(person.settings)}\t{state}")


@user.group("token", cls=_UserCommands)
def token():
    """API token commands: add, list, revoke."""


@token.command("add")
@click.argument("name")
@click.option("--name", "token_name", required=True, help="What the token is for, e.g. the system that uses it.")
@click.option("--role", "roles", multiple=True,
              help="A role the token acts with (one of the user's); repeat for several. Default: all of the user's roles.")
@click.option("--expires-days", default=None, help="Days until the token stops working. Default: never.")
def token_add(name: str, token_name: str, roles: tuple[str, ...], expires_days: str | None):
    """Issue an API token for a user and print its secret (shown once)."""
    days = None
    if expires_days is not None:
        if not expires_days.strip().isdigit() or not 1 <= int(expires_days) <= 3650:
            raise click.UsageError(f"--expires-days takes a whole number of days from 1 to 3650, not {expires_days!r}.")
        days = int(expires_days)

    def issue(services):
        expires_at = services.clock.now() + timedelta(days=days) if days is not None else None
        return accounts.issue_token(services, username=name, name=token_name, roles=list(roles) or None,
                                    expires_at=expires_at, actor=_actor())

    issued, secret = _run(issue)
    click.echo(f"Issued API token {issued.id} '{issued.name}' for {name} ({_scope(issued, name)}; "
               f"expires {_when(issued.expires_at) if issued.expires_at else 'never'}). Secret (shown once):")
    click.echo(secret)


@token.command("list")
@click.argument("name")
def token_list(name: str):
    """List a user's API tokens (never their secrets)."""
    services = _services(_app())
    try:
        tokens = accounts.tokens_of(services, username=name)
    except CaseworkError as err:
        raise click.ClickException(_describe(err)) from err
    now = services.clock.now()
    for issued in tokens:
        click.echo(f"{issued.id}\t{issued.name}\t{_scope(issued, name)}\tcreated {_when(issued.created_at)} "
                   f"by {issued.created_by}\t{_status(issued, now)}")
    if not tokens:
        click.echo(f"{name} has no API tokens.")


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str):
    """Revoke an API token: the next request that sends it is refused."""
    if not token_id.strip().isdigit():
        raise click.UsageError(f"TOKEN_ID is the number `casework user token list` shows, not {token_id!r}.")
    revoked = _run(lambda services: accounts.revoke_token(services, token_id=int(token_id), actor=_actor()))
    click.echo(f"Revoked API token {revoked.id} '{revoked.name}': it is refused from now on.")


def _scope(issued: ApiToken, username: str) -> str:
    return f"roles: {', '.join(issued.roles)}" if issued.roles is not None else f"all of {username}'s roles"


def _status(issued: ApiToken, now: datetime) -> str:
    if issued.revoked:
        return f"revoked {_when(issued.revoked_at)} by {issued.revoked_by}"
    if issued.expires_at is not None and issued.expires_at <= now:
        return f"expired {_when(issued.expires_at)}"
    return f"active, expires {_when(issued.expires_at)}" if issued.expires_at else "active, never expires"
