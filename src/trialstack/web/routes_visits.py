"""The visit date: entered (or corrected, with a reason) with the visit's window in view; the window check's
result and any query it opened come back inline."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from trialstack.api.routes_capture import render_outcome
from trialstack.api.schemas import VisitDateRequest
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.capture.views import form_status, target_date, visit_window
from trialstack.errors import NotFound, TrialStackError
from trialstack.identity.policy import Action, Principal
from trialstack.web.forms import errors_of, general_error, posted_version, text
from trialstack.web.loaders import SubjectPage, load_subject, today
from trialstack.web.routing import is_htmx, web_router
from trialstack.web.run import run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import can, page

router = web_router(prefix="/studies/{study_id}/subjects/{subject_id}/visits")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]


def _context(request: Request, principal: Principal, loaded: SubjectPage, key: VisitKey) -> dict[str, Any]:
    rules, casebook = loaded.rules, loaded.casebook
    visit = rules.definition.visit(key.visit_id)
    if visit is None:
        raise NotFound(f"visit {key.visit_id} is not in the schedule", field="visit")
    recorded = casebook.visit_dates.get(key)
    forms = [form_status(rules, casebook, FormKey(f, key)) for f in visit.forms] if recorded else []
    return {
        "visit": visit,
        "key": str(key),
        "name": visit.name if not key.repeat else f"{visit.name} {key.repeat}",
        "subject_id": casebook.subject_id,
        "site_id": loaded.site_id,
        "recorded": recorded,
        "window": visit_window(rules, casebook, visit),
        "window_days": visit.window_days(),
        "target": target_date(rules, casebook, visit),
        "anchor": rules.definition.schedule.anchor,
        "forms": forms,
        "planned_forms": [(f, rules.definition.form(f)) for f in visit.forms],
        "version": casebook.version,
        "editable": can(principal, Action.DATA_ENTER, casebook.study_id, loaded.site_id) and not casebook.locked,
        "today": today(request).isoformat(),
        "idempotency_key": uuid.uuid4().hex,
        "errors": {},
        "values": {"visit_date": recorded or "", "reason": ""},
    }


@router.get("/{visit}")
def visit_page(study_id: str, subject_id: str, visit: str, request: Request, principal: User) -> Response:
    """The visit: its window from the anchor date, its date, and its forms."""
    loaded = load_subject(request, principal, study_id, subject_id, Action.SUBJECT_READ)
    context = _context(request, principal, loaded, VisitKey.parse(visit))
    return page(request, "visit.html", context, principal=principal, study_id=study_id)


@router.post("/{visit}")
def record_date(
    study_id: str, subject_id: str, visit: str, request: Request, principal: User, posted: Posted
) -> Response:
    """RecordVisitDate as the API's PUT …/visits/{visit} runs it."""
    key = VisitKey.parse(visit)
    loaded = load_subject(request, principal, study_id, subject_id, Action.DATA_ENTER)
    values = {"visit_date": text(posted, "visit_date") or "", "reason": text(posted, "reason") or ""}
    try:
        expected = posted_version(posted)
        body = VisitDateRequest(visit_date=values["visit_date"], reason=values["reason"] or None)
        command = cmd.RecordVisitDate(subject_id, key, body.visit_date, body.reason)
        outcome = run(
            request,
            loaded.actor,
            body,
            lambda uow: handlers.record_visit_date(uow, study_id, command, expected),
            render_outcome(),
            pinned=expected is not None,
        )
    except (ValidationError, TrialStackError) as error:
        errors = errors_of(error)
        context = {**_context(request, principal, loaded, key), "errors": errors, "values": values}
        context["general_error"] = general_error(errors, ["visit_date", "reason"])
        return _answer(request, principal, study_id, context, 422)
    fresh = load_subject(request, principal, study_id, subject_id, Action.DATA_ENTER)
    context = {**_context(request, principal, fresh, key), "outcome": outcome, "saved": True}
    return _answer(request, principal, study_id, context, 200)


def _answer(request: Request, principal: Principal, study_id: str, context: dict[str, Any], status: int) -> Response:
    name = "_visit_body.html" if is_htmx(request) else "visit.html"
    return page(request, name, context, principal=principal, study_id=study_id, status_code=status)
