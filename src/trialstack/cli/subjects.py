"""`trialstack subject erase`: crypto-shred a subject's personal data, as a named user holding the right to.

Erasure cannot be undone, so the operator signs in as themselves (password from a hidden prompt or stdin) and must
hold `personal_data.erase` for the subject's site; the sign-in, the erasure and the sign-out are all in the ledger.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from trialstack.bootstrap import bootstrap
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.readmodel import get_subject
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.errors import InvalidInput, NotFound
from trialstack.identity.authentication import IDENTITY_SYSTEM, login, logout, user_actor
from trialstack.identity.policy import Action, authorize
from trialstack.ledger.envelope import Actor

subject_app = typer.Typer(name="subject", help="Subjects' personal data.", no_args_is_help=True)


@subject_app.command("erase")
@clear_errors
def erase_command(
    study: Annotated[str, typer.Option("--study", help="The study.")],
    subject: Annotated[str, typer.Option("--subject", help="The subject whose personal data is erased.")],
    as_user: Annotated[str, typer.Option("--as", help="Your username (you must hold personal_data.erase).")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded in the ledger).")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read your password from the first line of stdin.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Destroy the subject's vault key: personal values become unrecoverable; the chain still verifies."""
    if reason is None or not reason.strip():
        raise InvalidInput("erasing personal data needs --reason (it is recorded in the audit trail)", field="reason")
    platform = bootstrap(database_url=db, migrate=True)
    try:
        platform.check_vault()
        with platform.engine.connect() as connection:
            found = get_subject(connection, study, subject)
        if found is None:
            raise NotFound(f"subject {subject} does not exist in study {study}", field="subject")
        password = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True)
        with platform.unit_of_work(IDENTITY_SYSTEM) as uow:
            session = login(uow, as_user, password)
            uow.commit()
        try:
            grant = authorize(session.principal, Action.PERSONAL_DATA_ERASE, study, str(found["site_id"]))
            with platform.unit_of_work(Actor(f"user:{as_user}", grant.role.value)) as uow:
                outcome = handlers.erase_personal_data(uow, study, cmd.ErasePersonalData(subject, reason))
                uow.commit()
        finally:
            with platform.unit_of_work(user_actor(as_user)) as uow:
                logout(uow, session.session_id)
                uow.commit()
        places = outcome.events[0].payload["items"] if outcome.events else []
        console.print(
            f"erased the personal data of {subject} in {study} ({len(places)} item(s): {', '.join(places) or 'none'})",
            highlight=False,
        )
    finally:
        platform.close()
