"""Source data verification: the monitor's work list, and one form instance verified item by item with the
targeted items highlighted (VerifySourceData through the API's executor)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from trialstack.api.access import visible_sites
from trialstack.api.platform import platform_of
from trialstack.api.routes_capture import render_outcome
from trialstack.api.schemas import SdvRequest
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture import status_readmodel as status
from trialstack.capture.refs import FormKey
from trialstack.capture.views import form_detail
from trialstack.errors import TrialStackError
from trialstack.identity.policy import Action, Principal, authorize
from trialstack.queries.readmodel import list_queries
from trialstack.web.forms import errors_of
from trialstack.web.loaders import SubjectPage, load_subject
from trialstack.web.paging import PageNumber, Paging
from trialstack.web.routing import is_htmx, web_router
from trialstack.web.run import run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import page

router = web_router(prefix="/studies/{study_id}")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]


@router.get("/sdv")
def sdv_list(study_id: str, request: Request, principal: User, page_number: PageNumber = 1) -> Response:
    """Complete forms with items still to verify, at the monitor's sites, a page at a time."""
    authorize(principal, Action.SDV_PERFORM, study_id)
    sites = visible_sites(principal, study_id)
    with platform_of(request).engine.connect() as connection:
        paging = Paging.of(page_number, status.count_work(connection, study_id, status.VERIFY, sites))
        rows = status.work_page(connection, study_id, status.VERIFY, sites, offset=paging.offset, limit=paging.size)
    shown = [{**row, "due": row["sdv_due"]} for row in rows]
    return page(request, "sdv_list.html", {"rows": shown, "paging": paging}, principal=principal, study_id=study_id)


def _context(request: Request, loaded: SubjectPage, key: FormKey) -> dict[str, Any]:
    detail = form_detail(loaded.rules, loaded.casebook, key)
    with platform_of(request).engine.connect() as connection:
        queries = list_queries(connection, loaded.casebook.study_id, subject_id=loaded.casebook.subject_id)
    open_items = {q["item"] for q in queries if q["form"] == str(key) and q["status"] in ("open", "answered")}
    items = [{**item, "has_data": item["value"] is not None or item["not_done_reason"] is not None,
              "queried": item["item"] in open_items} for item in detail["items"]]  # fmt: skip
    return {
        "form": detail,
        "rows": items,
        "key": str(key),
        "subject_id": loaded.casebook.subject_id,
        "site_id": loaded.site_id,
        "targeted": any(item["sdv_required"] for item in items),
        "items": [(item["item"], item["label"]) for item in items],
        "errors": {},
    }


@router.get("/subjects/{subject_id}/forms/{form}/sdv")
def sdv_page(study_id: str, subject_id: str, form: str, request: Request, principal: User) -> Response:
    """One form instance for verification: values, targeted items first in view, a query form beside."""
    loaded = load_subject(request, principal, study_id, subject_id, Action.SDV_PERFORM)
    context = _context(request, loaded, FormKey.parse(form))
    return page(request, "sdv_form.html", context, principal=principal, study_id=study_id)


@router.post("/subjects/{subject_id}/forms/{form}/sdv")
def verify(study_id: str, subject_id: str, form: str, request: Request, principal: User, posted: Posted) -> Response:
    """Verify the ticked items (none ticked: every item due, as the API does)."""
    key = FormKey.parse(form)
    loaded = load_subject(request, principal, study_id, subject_id, Action.SDV_PERFORM)
    try:
        body = SdvRequest(items=[v for v in posted.getlist("items") if isinstance(v, str)])
        command = cmd.VerifySourceData(subject_id, key, tuple(body.items))
        outcome = run(
            request, loaded.actor, body, lambda uow: handlers.verify_source_data(uow, study_id, command),
            render_outcome(),
        )  # fmt: skip
    except (ValidationError, TrialStackError) as error:
        context = {**_context(request, loaded, key), "errors": errors_of(error)}
        return _answer(request, principal, study_id, context, 422)
    fresh = load_subject(request, principal, study_id, subject_id, Action.SDV_PERFORM)
    verified = [e for e in outcome["events"] if e["event_type"] == "SourceDataVerified"]
    context = {**_context(request, fresh, key), "verified_now": len(verified)}
    return _answer(request, principal, study_id, context, 200)


def _answer(request: Request, principal: Principal, study_id: str, context: dict[str, Any], status: int) -> Response:
    name = "_sdv_body.html" if is_htmx(request) else "sdv_form.html"
    return page(request, name, context, principal=principal, study_id=study_id, status_code=status)
