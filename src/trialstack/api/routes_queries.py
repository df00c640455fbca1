"""Query endpoints: the inbox with aging, opening manual queries, answering, re-querying, closing, cancelling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from trialstack.api.access import actor_for, subject_site, visible_sites
from trialstack.api.commands import execute
from trialstack.api.platform import platform_of
from trialstack.api.schemas import CloseQueryRequest, OpenQueryRequest, ReasonRequest, TextRequest
from trialstack.api.security import current_principal
from trialstack.capture.refs import FormKey
from trialstack.errors import NotFound
from trialstack.identity.policy import Action, Principal, authorize
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers
from trialstack.queries.readmodel import age_in_days, get_query, list_queries

router = APIRouter(prefix="/api/v1/studies/{study_id}/queries", tags=["queries"])
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _render(status: int = 200) -> Callable[[list[RecordedEvent], list[RecordedEvent]], tuple[int, dict[str, Any]]]:
    def render(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        query_id = recorded[0].payload["query_id"] if recorded else None
        return status, {
            "query_id": query_id,
            "events": [{"study_seq": e.study_seq, "event_type": e.event_type} for e in events],
        }

    return render


@router.get("")
def get_queries(
    study_id: str,
    request: Request,
    principal: CurrentPrincipal,
    status: str | None = None,
    subject_id: str | None = None,
) -> dict[str, Any]:
    """Queries at the sites the user sees, with their age in days."""
    authorize(principal, Action.STUDY_READ, study_id)
    platform = platform_of(request)
    today = platform.clock.now().date().isoformat()
    with platform.engine.connect() as connection:
        rows = list_queries(
            connection, study_id, sites=visible_sites(principal, study_id), status=status, subject_id=subject_id
        )
    return {"queries": [{**row, "age_days": age_in_days(row, today)} for row in rows]}


@router.post("", status_code=201)
def post_query(study_id: str, body: OpenQueryRequest, request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """Raise a manual query on an item (monitors and data managers)."""
    platform = platform_of(request)
    FormKey.parse(body.form)
    with platform.engine.connect() as connection:
        site_id = subject_site(connection, principal, study_id, body.subject_id)
    grant = authorize(principal, Action.QUERY_OPEN, study_id, site_id)
    command = qcmd.OpenQuery(body.subject_id, body.form, body.item, body.text)
    return execute(
        platform,
        actor_for(principal, grant),
        request,
        body,
        lambda uow: handlers.open_manual_query(uow, study_id, site_id, command),
        _render(201),
    )


def _on_query(
    request: Request,
    principal: Principal,
    study_id: str,
    query_id: str,
    action: Action,
    body: Any,
    work: Callable[[UnitOfWork], list[RecordedEvent]],
) -> JSONResponse:
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        row = get_query(connection, study_id, query_id)
    sites = visible_sites(principal, study_id)
    if row is None or (sites is not None and row["site_id"] not in sites):
        raise NotFound(f"query {query_id} not found in study {study_id}", field="query_id")
    grant = authorize(principal, action, study_id, row["site_id"])
    return execute(platform, actor_for(principal, grant), request, body, work, _render())


@router.post("/{query_id}/answer")
def post_answer(
    study_id: str, query_id: str, body: TextRequest, request: Request, principal: CurrentPrincipal
) -> JSONResponse:
    """The site answers an open query."""
    command = qcmd.AnswerQuery(query_id, body.text)
    return _on_query(
        request, principal, study_id, query_id, Action.QUERY_ANSWER, body,
        lambda uow: handlers.answer_query(uow, study_id, command),
    )  # fmt: skip


@router.post("/{query_id}/requery")
def post_requery(
    study_id: str, query_id: str, body: TextRequest, request: Request, principal: CurrentPrincipal
) -> JSONResponse:
    """The answer did not resolve it: ask again."""
    command = qcmd.RequeryQuery(query_id, body.text)
    return _on_query(
        request, principal, study_id, query_id, Action.QUERY_OPEN, body,
        lambda uow: handlers.requery_query(uow, study_id, command),
    )  # fmt: skip


@router.post("/{query_id}/close")
def post_close(
    study_id: str, query_id: str, body: CloseQueryRequest, request: Request, principal: CurrentPrincipal
) -> JSONResponse:
    """Close a query (data managers and monitors only)."""
    command = qcmd.CloseQuery(query_id, body.resolution)
    return _on_query(
        request, principal, study_id, query_id, Action.QUERY_CLOSE, body,
        lambda uow: handlers.close_query(uow, study_id, command),
    )  # fmt: skip


@router.post("/{query_id}/cancel")
def post_cancel(
    study_id: str, query_id: str, body: ReasonRequest, request: Request, principal: CurrentPrincipal
) -> JSONResponse:
    """Cancel a query raised in error, with the reason."""
    command = qcmd.CancelQuery(query_id, body.reason)
    return _on_query(
        request, principal, study_id, query_id, Action.QUERY_CLOSE, body,
        lambda uow: handlers.cancel_query(uow, study_id, command),
    )  # fmt: skip
