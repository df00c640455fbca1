"""`trialstack user ...` and `trialstack token ...`: account and access administration from the operator's shell.

Every change is a ledger event attributed to the operating-system user acting as admin (`os:<login>`); passwords
are read from a hidden prompt or stdin, never from the command line (shell history, process lists).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from trialstack.bootstrap import bootstrap
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.identity import commands as cmd
from trialstack.identity import handlers
from trialstack.identity.policy import Role
from trialstack.identity.readmodel import list_tokens, list_users
from trialstack.ledger.envelope import Actor
from trialstack.ledger.uow import UnitOfWork

user_app = typer.Typer(name="user", help="User accounts and their roles per study and site.", no_args_is_help=True)
token_app = typer.Typer(
    name="token", help="API tokens for integrations (shown once, stored as a hash).", no_args_is_help=True
)

T = TypeVar("T")
UsernameArgument = Annotated[str, typer.Argument(help="The username (3-64 lower-case letters, digits, . _ -).")]
RoleOption = Annotated[Role, typer.Option("--role", help="The role to grant.")]
StudyOption = Annotated[str, typer.Option("--study", help="The study the role is held in.")]
SiteOption = Annotated[list[str] | None, typer.Option("--site", help="A site (repeat for several; none: every site).")]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (recorded in the ledger).")]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")]


def operator() -> Actor:
    """Who administers from the shell: the operating-system user, acting as admin."""
    return Actor(id=f"os:{getpass.getuser()}", role="admin")


def _run(db: str | None, work: Callable[[UnitOfWork], T]) -> T:
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.unit_of_work(operator()) as uow:
            result = work(uow)
            uow.commit()
        return result
    finally:
        platform.close()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _sites(sites: list[str] | None) -> frozenset[str]:
    return frozenset(sites or ())


@user_app.command("add")
@clear_errors
def add_command(
    username: UsernameArgument,
    role: RoleOption,
    study: StudyOption,
    site: SiteOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Printed name shown with signatures.")] = None,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Create an account with a first role (a site-staff role needs --site; sites are checked if the study is
    loaded)."""
    password = _password(password_stdin)
    register = cmd.RegisterUser(username, name or username, password)
    grant = cmd.GrantRole(username, study, role, _sites(site))

    def work(uow: UnitOfWork) -> None:
        handlers.register_user(uow, register)
        handlers.grant_role(uow, grant)

    _run(db, work)
    where = ", ".join(sorted(grant.sites)) or "every site"
    console.print(f"user {username} created: {role.value} in {study} at {where}", highlight=False)


@user_app.command("grant")
@clear_errors
def grant_command(
    username: UsernameArgument,
    role: RoleOption,
    study: StudyOption,
    site: SiteOption = None,
    reason: ReasonOption = None,
    db: DbOption = None,
) -> None:
    """Grant a role in a study, at sites (added to the sites already held)."""
    recorded = _run(
        db, lambda uow: handlers.grant_role(uow, cmd.GrantRole(username, study, role, _sites(site), reason))
    )
    verb = "granted" if recorded else "already held"
    console.print(f"{role.value} in {study} {verb} for {username}", highlight=False)


@user_app.command("revoke")
@clear_errors
def revoke_command(
    username: UsernameArgument,
    role: RoleOption,
    study: StudyOption,
    site: SiteOption = None,
    reason: ReasonOption = None,
    db: DbOption = None,
) -> None:
    """Withdraw a role at some sites, or entirely when no --site is given."""
    _run(db, lambda uow: handlers.revoke_role(uow, cmd.RevokeRole(username, study, role, _sites(site), reason)))
    console.print(f"{role.value} in {study} revoked for {username}", highlight=False)


@user_app.command("list")
@clear_errors
def list_command(
    study: Annotated[str | None, typer.Option("--study", help="Only users holding a role in this study.")] = None,
    db: DbOption = None,
) -> None:
    """List accounts with their roles and sites."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.engine.connect() as connection:
            users = list_users(connection, study)
    finally:
        platform.close()
    table = Table(title="Users", title_justify="left")
    for column in ("username", "name", "status", "2FA", "roles"):
        table.add_column(column)
    for user, grants in users:
        status = (
            "disabled" if user.disabled else (f"locked until {user.locked_until}" if user.locked_until else "active")
        )
        roles = "\n".join(f"{g.study_id} {g.role.value} @ {','.join(sorted(g.sites))}" for g in grants)
        table.add_row(user.username, user.display_name, status, "yes" if user.totp else "", roles)
    console.print(table)


@user_app.command("disable")
@clear_errors
def disable_command(username: UsernameArgument, reason: ReasonOption = None, db: DbOption = None) -> None:
    """Disable an account: sign-in, sessions and API tokens stop working at once."""
    recorded = _run(db, lambda uow: handlers.disable_user(uow, cmd.DisableUser(username, reason)))
    console.print(f"user {username} {'disabled' if recorded else 'was already disabled'}", highlight=False)


@user_app.command("enable")
@clear_errors
def enable_command(username: UsernameArgument, reason: ReasonOption = None, db: DbOption = None) -> None:
    """Enable a disabled account again."""
    recorded = _run(db, lambda uow: handlers.enable_user(uow, cmd.EnableUser(username, reason)))
    console.print(f"user {username} {'enabled' if recorded else 'was not disabled'}", highlight=False)


@user_app.command("unlock")
@clear_errors
def unlock_command(username: UsernameArgument, reason: ReasonOption = None, db: DbOption = None) -> None:
    """Lift a lockout before it expires (after confirming who is asking)."""
    recorded = _run(db, lambda uow: handlers.unlock_user(uow, cmd.UnlockUser(username, reason)))
    console.print(f"user {username} {'unlocked' if recorded else 'was not locked'}", highlight=False)


@user_app.command("password")
@clear_errors
def password_command(
    username: UsernameArgument, password_stdin: StdinOption = False, reason: ReasonOption = None, db: DbOption = None
) -> None:
    """Set a new password for a user (a reset: their open sessions end)."""
    change = cmd.ChangePassword(username, _password(password_stdin), reset=True)
    _run(db, lambda uow: handlers.change_password(uow, change, reason))
    console.print(f"password of {username} set", highlight=False)


@user_app.command("totp")
@clear_errors
def totp_command(
    username: UsernameArgument,
    disable: Annotated[bool, typer.Option("--disable", help="Turn the second factor off.")] = False,
    db: DbOption = None,
) -> None:
    """Require a one-time code at sign-in; prints the otpauth:// URI to load into an authenticator app, once."""
    uri = _run(db, lambda uow: handlers.set_totp(uow, username, not disable))
    if uri is None:
        console.print(f"second factor off for {username}", highlight=False)
        return
    console.print(f"second factor on for {username}; add this to the authenticator app now:", highlight=False)
    typer.echo(uri)


@token_app.command("create")
@clear_errors
def token_create_command(
    username: UsernameArgument,
    expires: Annotated[int | None, typer.Option("--expires", min=1, help="Days until the token expires.")] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Limit the token to the user's roles in one study.")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="What the token is for.")] = None,
    db: DbOption = None,
) -> None:
    """Issue an API token and print it once; only its SHA-256 is stored."""

    def work(uow: UnitOfWork) -> tuple[str, str]:
        until = uow.clock.now() + timedelta(days=expires) if expires is not None else None
        token = handlers.issue_api_token(uow, username, until, study, label)
        return token.token_id, token.secret

    token_id, secret = _run(db, work)
    console.print(f"token {token_id} for {username}; copy it now, it cannot be shown again:", highlight=False)
    typer.echo(secret)


@token_app.command("revoke")
@clear_errors
def token_revoke_command(
    token_id: Annotated[str, typer.Argument(help="The token id (the part after `tsk_`).")],
    reason: ReasonOption = None,
    db: DbOption = None,
) -> None:
    """Revoke an API token; it stops working at once."""
    recorded = _run(db, lambda uow: handlers.revoke_api_token(uow, token_id, reason))
    console.print(f"token {token_id} {'revoked' if recorded else 'was already revoked'}", highlight=False)


@token_app.command("list")
@clear_errors
def token_list_command(
    username: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None, db: DbOption = None
) -> None:
    """List API tokens (ids, owners, scope, expiry; never the tokens themselves)."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.engine.connect() as connection:
            tokens = list_tokens(connection, username)
    finally:
        platform.close()
    table = Table(title="API tokens", title_justify="left")
    for column in ("id", "user", "study", "label", "issued", "expires", "revoked"):
        table.add_column(column)
    for t in tokens:
        table.add_row(
            t.token_id, t.username, t.study_id or "", t.label or "", t.issued_at, t.expires_at or "", t.revoked_at or ""
        )
    console.print(table)
