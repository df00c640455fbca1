"""Subject and form state changes from the casebook and form pages: enrol, screen failure, lock and unlock the
casebook, freeze and unfreeze a form. Each goes through the API's executor and handler, then back to the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from trialstack.api.routes_capture import render_outcome
from trialstack.api.schemas import EnrolRequest, ReasonRequest, ScreenFailRequest
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.handlers import Outcome
from trialstack.capture.refs import FormKey
from trialstack.errors import NotFound, TrialStackError
from trialstack.identity.policy import Action, Principal
from trialstack.ledger.uow import UnitOfWork
from trialstack.web.forms import errors_of, text
from trialstack.web.loaders import load_subject
from trialstack.web.routing import error_response, redirect, web_router
from trialstack.web.run import run
from trialstack.web.session import current_user, posted_form

router = web_router(prefix="/studies/{study_id}/subjects/{subject_id}")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]
Work = Callable[[UnitOfWork], Outcome]


def _subject_command(
    study_id: str, subject_id: str, change: str, posted: FormData
) -> tuple[Action, BaseModel | None, Work]:
    """The action, the API body and the handler call of a casebook-level change."""
    day = text(posted, "date") or ""
    reason = text(posted, "reason") or ""
    if change == "enrol":
        enrol = EnrolRequest(enrolled_on=day)
        command = cmd.EnrolSubject(subject_id, enrol.enrolled_on)
        return Action.SUBJECT_ENROL, enrol, lambda uow: handlers.enrol_subject(uow, study_id, command)
    if change == "screen-failure":
        failed = ScreenFailRequest(failed_on=day, reason=reason)
        fail = cmd.ScreenFailSubject(subject_id, failed.failed_on, failed.reason)
        return Action.SUBJECT_ENROL, failed, lambda uow: handlers.screen_fail_subject(uow, study_id, fail)
    if change == "lock":
        lock = cmd.LockCasebook(subject_id)
        return Action.CASEBOOK_LOCK, None, lambda uow: handlers.lock_casebook(uow, study_id, lock)
    if change == "unlock":
        body = ReasonRequest(reason=reason)
        unlock = cmd.UnlockCasebook(subject_id, body.reason)
        return Action.CASEBOOK_LOCK, body, lambda uow: handlers.unlock_casebook(uow, study_id, unlock)
    raise NotFound(f"no casebook change {change!r}", field="change")


def _form_command(
    study_id: str, subject_id: str, key: FormKey, change: str, posted: FormData
) -> tuple[BaseModel | None, Work]:
    if change == "freeze":
        freeze = cmd.FreezeForm(subject_id, key)
        return None, lambda uow: handlers.freeze_form(uow, study_id, freeze)
    if change == "unfreeze":
        body = ReasonRequest(reason=text(posted, "reason") or "")
        unfreeze = cmd.UnfreezeForm(subject_id, key, body.reason)
        return body, lambda uow: handlers.unfreeze_form(uow, study_id, unfreeze)
    raise NotFound(f"no form change {change!r}", field="change")


def _refused(request: Request, error: Exception) -> Response:
    messages: dict[str, Any] = errors_of(error)
    return error_response(request, 422, "Not possible", " ".join(str(m) for m in messages.values()))


@router.post("/status/{change}")
def change_subject(
    study_id: str, subject_id: str, change: str, request: Request, principal: User, posted: Posted
) -> Response:
    """Enrol, record a screen failure, lock or unlock the casebook."""
    try:
        action, body, work = _subject_command(study_id, subject_id, change, posted)
        loaded = load_subject(request, principal, study_id, subject_id, action)
        run(request, loaded.actor, body, work, render_outcome())
    except (ValidationError, TrialStackError) as error:
        return _refused(request, error)
    return redirect(request, f"/studies/{study_id}/subjects/{subject_id}?done={change}")


@router.post("/forms/{form}/status/{change}")
def change_form(
    study_id: str, subject_id: str, form: str, change: str, request: Request, principal: User, posted: Posted
) -> Response:
    """Freeze or unfreeze a form instance (data managers)."""
    key = FormKey.parse(form)
    try:
        body, work = _form_command(study_id, subject_id, key, change, posted)
        loaded = load_subject(request, principal, study_id, subject_id, Action.FORM_FREEZE)
        run(request, loaded.actor, body, work, render_outcome())
    except (ValidationError, TrialStackError) as error:
        return _refused(request, error)
    return redirect(request, f"/studies/{study_id}/subjects/{subject_id}/forms/{key}")
