"""The electronic signature dialog: the investigator re-enters their password (identity re-authentication), sees
the meaning, their printed name and the time, and signs the casebook (capture's SignCasebook) in one unit of work."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData

from trialstack.api.platform import platform_of
from trialstack.capture import commands as capture_commands
from trialstack.capture.handlers import sign_casebook
from trialstack.capture.readmodel import latest_signature
from trialstack.capture.signatures import CASEBOOK_MEANING
from trialstack.errors import InvalidInput, TrialStackError
from trialstack.identity.authentication import reauthenticate_for_signature
from trialstack.identity.policy import Action, Principal
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.queries.readmodel import list_queries
from trialstack.web.forms import errors_of, text
from trialstack.web.loaders import SubjectPage, load_subject
from trialstack.web.routing import redirect, web_router
from trialstack.web.run import event_summary, run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import page, when

router = web_router(prefix="/studies/{study_id}/subjects/{subject_id}/sign")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]


class SignBody(BaseModel):
    """What is signed (the password is checked by identity and never part of a stored request)."""

    model_config = ConfigDict(extra="forbid")

    meaning: str = Field(min_length=1)
    confirm: bool


def _context(request: Request, principal: Principal, loaded: SubjectPage) -> dict[str, Any]:
    study_id, subject_id = loaded.casebook.study_id, loaded.casebook.subject_id
    with platform_of(request).engine.connect() as connection:
        signature = latest_signature(connection, study_id, subject_id)
        queries = list_queries(connection, study_id, subject_id=subject_id)
    now = platform_of(request).clock.now().strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "subject_id": subject_id,
        "site_id": loaded.site_id,
        "signature": signature,
        "meaning": CASEBOOK_MEANING,
        "printed_name": principal.display_name,
        "now": when(now),
        "forms": len(loaded.casebook.forms),
        "unresolved": sum(1 for q in queries if q["status"] in ("open", "answered")),
        "errors": {},
    }


@router.get("")
def sign_page(study_id: str, subject_id: str, request: Request, principal: User, signed: int = 0) -> Response:
    """The casebook's signature state and the signing dialog."""
    loaded = load_subject(request, principal, study_id, subject_id, Action.CASEBOOK_SIGN)
    context = {**_context(request, principal, loaded), "signed": signed}
    return page(request, "sign.html", context, principal=principal, study_id=study_id)


@router.post("")
def sign(study_id: str, subject_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Re-authenticate, then sign; a wrong password is recorded by identity and nothing is signed."""
    loaded = load_subject(request, principal, study_id, subject_id, Action.CASEBOOK_SIGN)
    password = posted.get("password")
    try:
        body = SignBody(meaning=CASEBOOK_MEANING, confirm=text(posted, "confirm") == "yes")
        if not body.confirm:
            raise InvalidInput("Tick the box to confirm that this is your signature.", field="confirm")
        command = capture_commands.SignCasebook(
            subject_id, body.meaning, f"user:{principal.username}", principal.display_name
        )

        def work(uow: UnitOfWork) -> list[RecordedEvent]:
            reauthenticate_for_signature(uow, principal.username, password if isinstance(password, str) else "")
            return sign_casebook(uow, study_id, command).events

        run(request, loaded.actor, body, work, event_summary)
    except (ValidationError, TrialStackError) as error:
        context = {**_context(request, principal, loaded), "errors": errors_of(error)}
        return page(request, "_sign_dialog.html", context, principal=principal, study_id=study_id, status_code=422)
    return redirect(request, f"/studies/{study_id}/subjects/{subject_id}/sign?signed=1")
