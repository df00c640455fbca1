"""The query inbox with aging: sites answer; monitors and data managers open, re-query, close or cancel."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from trialstack.api.access import actor_for, subject_site, visible_sites
from trialstack.api.platform import platform_of
from trialstack.api.schemas import CloseQueryRequest, OpenQueryRequest, ReasonRequest, TextRequest
from trialstack.capture.refs import FormKey
from trialstack.errors import NotFound, TrialStackError
from trialstack.identity.policy import Action, Principal, authorize
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers
from trialstack.queries.readmodel import age_in_days, get_query, list_queries
from trialstack.web.forms import errors_of, text
from trialstack.web.loaders import load_rules
from trialstack.web.routing import web_router
from trialstack.web.run import event_summary, run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import can, page

router = web_router(prefix="/studies/{study_id}/queries")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]
STATUSES = ("open", "answered", "closed", "cancelled")
Work = Callable[[UnitOfWork], list[RecordedEvent]]


def _today(request: Request) -> str:
    return platform_of(request).clock.now().date().isoformat()


@router.get("")
def inbox(
    study_id: str, request: Request, principal: User, status: str | None = None, subject_id: str | None = None
) -> Response:
    """Queries at the user's sites, oldest first; the default view is what this user acts on."""
    authorize(principal, Action.STUDY_READ, study_id)
    if status is None:
        status = "answered" if can(principal, Action.QUERY_CLOSE, study_id) else "open"
    sites = visible_sites(principal, study_id)
    today = _today(request)
    with platform_of(request).engine.connect() as connection:
        every = list_queries(connection, study_id, sites=sites, subject_id=subject_id)
    counts = Counter(row["status"] for row in every)
    rows = [{**row, "age_days": age_in_days(row, today)} for row in every if status == "all" or row["status"] == status]
    rows.sort(key=lambda row: -row["age_days"])
    context = {"rows": rows, "status": status, "counts": counts, "statuses": STATUSES, "subject_id": subject_id}
    return page(request, "queries.html", context, principal=principal, study_id=study_id)


@router.post("")
def open_query(study_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """A manual query on an item (monitors, data managers), from the form or SDV page."""
    values = {name: text(posted, name) or "" for name in ("subject_id", "form", "item", "text")}
    context: dict[str, Any] = {"values": values, "subject_id": values["subject_id"], "key": values["form"]}
    try:
        body = OpenQueryRequest(**values)
        FormKey.parse(body.form)
        with platform_of(request).engine.connect() as connection:
            site_id = subject_site(connection, principal, study_id, body.subject_id)
        grant = authorize(principal, Action.QUERY_OPEN, study_id, site_id)
        command = qcmd.OpenQuery(body.subject_id, body.form, body.item, body.text)
        result = run(
            request,
            actor_for(principal, grant),
            body,
            lambda uow: handlers.open_manual_query(uow, study_id, site_id, command),
            event_summary,
        )
    except (ValidationError, TrialStackError) as error:
        context.update(errors=errors_of(error), items=_items(request, study_id, values["form"]))
        return page(request, "_open_query.html", context, principal=principal, study_id=study_id, status_code=422)
    opened = next(e["payload"] for e in result["events"] if e["event_type"] == "QueryOpened")
    context.update(
        errors={}, opened=opened, values={**values, "text": ""}, items=_items(request, study_id, values["form"])
    )
    return page(request, "_open_query.html", context, principal=principal, study_id=study_id)


def _items(request: Request, study_id: str, form: str) -> list[tuple[str, str]]:
    """The items of the form a query may be raised on (empty when the form key does not parse)."""
    try:
        key = FormKey.parse(form)
    except TrialStackError:
        return []
    definition = load_rules(request, study_id).definition.form(key.form_id)
    return [(item.id, item.label) for item in definition.items] if definition is not None else []


def _query_row(request: Request, principal: Principal, study_id: str, query_id: str) -> dict[str, Any]:
    """The query if the user may see its site (else not found, as the API answers)."""
    with platform_of(request).engine.connect() as connection:
        row = get_query(connection, study_id, query_id)
    sites = visible_sites(principal, study_id)
    if row is None or (sites is not None and row["site_id"] not in sites):
        raise NotFound(f"query {query_id} not found in study {study_id}", field="query_id")
    return {**row, "age_days": age_in_days(row, _today(request))}


ACTIONS: dict[str, tuple[Action, type[BaseModel], str]] = {
    "answer": (Action.QUERY_ANSWER, TextRequest, "text"),
    "requery": (Action.QUERY_OPEN, TextRequest, "text"),
    "close": (Action.QUERY_CLOSE, CloseQueryRequest, "resolution"),
    "cancel": (Action.QUERY_CLOSE, ReasonRequest, "reason"),
}


def _work(action: str, study_id: str, query_id: str, body: BaseModel) -> Work:
    value = str(getattr(body, ACTIONS[action][2]))
    if action == "answer":
        answer = qcmd.AnswerQuery(query_id, value)
        return lambda uow: handlers.answer_query(uow, study_id, answer)
    if action == "requery":
        requery = qcmd.RequeryQuery(query_id, value)
        return lambda uow: handlers.requery_query(uow, study_id, requery)
    if action == "close":
        close = qcmd.CloseQuery(query_id, value)
        return lambda uow: handlers.close_query(uow, study_id, close)
    cancel = qcmd.CancelQuery(query_id, value)
    return lambda uow: handlers.cancel_query(uow, study_id, cancel)


@router.post("/{query_id}/{action}")
def act(study_id: str, query_id: str, action: str, request: Request, principal: User, posted: Posted) -> Response:
    """Answer, re-query, close or cancel one query; the row is drawn again in its new state."""
    if action not in ACTIONS:
        raise NotFound(f"no query action {action!r}: expected one of {', '.join(ACTIONS)}", field="action")
    needed, model, field = ACTIONS[action]
    row = _query_row(request, principal, study_id, query_id)
    errors: dict[str, str] = {}
    try:
        grant = authorize(principal, needed, study_id, row["site_id"])
        body = model(**{field: text(posted, field) or ""})
        run(request, actor_for(principal, grant), body, _work(action, study_id, query_id, body), event_summary)
        row = _query_row(request, principal, study_id, query_id)
    except (ValidationError, TrialStackError) as error:
        errors = {f"{action}.{key}": message for key, message in errors_of(error).items()}
    context = {"q": row, "errors": errors, "done": None if errors else action, "subject_id": row["subject_id"]}
    status = 422 if errors else 200
    return page(request, "_query_row.html", context, principal=principal, study_id=study_id, status_code=status)
