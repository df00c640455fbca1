"""Form entry: items rendered from the definition, saved through the API's executor and handler, and the form
swapped back (htmx) with each edit check's result beside its item and the queries the save opened or closed."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from trialstack.api.platform import platform_of
from trialstack.api.routes_capture import render_outcome
from trialstack.capture import handlers
from trialstack.capture.refs import FormKey
from trialstack.errors import TrialStackError
from trialstack.identity.policy import Action, Principal
from trialstack.queries.readmodel import list_queries
from trialstack.web.forms import errors_of, posted_version, save_form_command, save_form_request
from trialstack.web.formview import Fields, form_view
from trialstack.web.loaders import SubjectPage, load_subject
from trialstack.web.routing import is_htmx, web_router
from trialstack.web.run import run
from trialstack.web.session import current_user, posted_form
from trialstack.web.stash import forget_stash, read_stash
from trialstack.web.templating import can, page

router = web_router(prefix="/studies/{study_id}/subjects/{subject_id}/forms")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]


def _queries(request: Request, study_id: str, subject_id: str) -> list[dict[str, Any]]:
    with platform_of(request).engine.connect() as connection:
        return list_queries(connection, study_id, subject_id=subject_id)


def _context(
    request: Request,
    principal: Principal,
    loaded: SubjectPage,
    key: FormKey,
    **view: Any,
) -> dict[str, Any]:
    study_id, subject_id = loaded.casebook.study_id, loaded.casebook.subject_id
    form = form_view(loaded.rules, loaded.casebook, key, queries=_queries(request, study_id, subject_id), **view)
    editable = can(principal, Action.DATA_ENTER, study_id, loaded.site_id) and not form["frozen"] and not form["locked"]
    return {
        "form": form,
        "key": str(key),
        "subject_id": subject_id,
        "site_id": loaded.site_id,
        "version": loaded.casebook.version,
        "editable": editable,
        "can_query": can(principal, Action.QUERY_OPEN, study_id, loaded.site_id),
        "can_sdv": can(principal, Action.SDV_PERFORM, study_id, loaded.site_id),
        "idempotency_key": uuid.uuid4().hex,
        "errors": view.get("errors") or {},
        "items": [(item["item"], item["label"]) for item in form["items"]],
    }


@router.get("/{form}")
def form_page(study_id: str, subject_id: str, form: str, request: Request, principal: User) -> Response:
    """The entry page of one form instance (read-only for roles that may not enter data)."""
    key = FormKey.parse(form)
    loaded = load_subject(request, principal, study_id, subject_id, Action.SUBJECT_READ)
    restored = read_stash(request)
    context = _context(request, principal, loaded, key, posted=restored)
    context["restored"] = restored is not None
    response = page(request, "form.html", context, principal=principal, study_id=study_id)
    forget_stash(request, response)
    return response


@router.post("/{form}")
def save(study_id: str, subject_id: str, form: str, request: Request, principal: User, posted: Posted) -> Response:
    """SaveForm as the API's PUT runs it, pinned to the casebook version the page showed (If-Match)."""
    key = FormKey.parse(form)
    loaded = load_subject(request, principal, study_id, subject_id, Action.DATA_ENTER)
    definition = loaded.rules.definition.form(key.form_id)
    item_ids = [i.id for i in definition.items if i.derived is None] if definition is not None else []
    fields: Fields = {name: [v for v in posted.getlist(name) if isinstance(v, str)] for name in posted}
    try:
        body = save_form_request(posted, item_ids)
        command = save_form_command(subject_id, key, body)
        expected = posted_version(posted)
        outcome = run(
            request,
            loaded.actor,
            body,
            lambda uow: handlers.save_form(uow, study_id, command, expected),
            render_outcome(),
            pinned=expected is not None,
        )
    except (ValidationError, TrialStackError) as error:
        context = _context(request, principal, loaded, key, posted=fields, errors=errors_of(error))
        return _answer(request, principal, study_id, context, 422)
    fresh = load_subject(request, principal, study_id, subject_id, Action.DATA_ENTER)
    context = _context(request, principal, fresh, key, outcome=outcome)
    context["saved"] = True
    return _answer(request, principal, study_id, context, 200)


def _answer(request: Request, principal: Principal, study_id: str, context: dict[str, Any], status: int) -> Response:
    """htmx swaps the form body; a plain post gets the whole page."""
    name = "_form_body.html" if is_htmx(request) else "form.html"
    return page(request, name, context, principal=principal, study_id=study_id, status_code=status)
