"""Query endpoints: the inbox with aging, opening manual queries, answering, re-querying, closing, cancelling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from trialstack.api.access import query_site_of, subject_site
from trialstack.api.commands import execute
from trialstack.api.openapi import AUTHENTICATED_ERRORS, WRITE_ERRORS
from trialstack.api.platform import platform_of
from trialstack.api.schemas import CloseQueryRequest, OpenQueryRequest, ReasonRequest, TextRequest
from trialstack.api.security import Authorized, requires
from trialstack.capture.refs import FormKey
from trialstack.identity.policy import Action
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers
from trialstack.queries.readmodel import age_in_days, list_queries

router = APIRouter(prefix="/api/v1/studies/{study_id}/queries", tags=["queries"], responses=AUTHENTICATED_ERRORS)
QueriesRead = Annotated[Authorized, requires(Action.STUDY_READ, site=None)]
Opening = Annotated[Authorized, requires(Action.QUERY_OPEN, site=None)]
Answering = Annotated[Authorized, requires(Action.QUERY_ANSWER, site=query_site_of)]
Requerying = Annotated[Authorized, requires(Action.QUERY_OPEN, site=query_site_of)]
Closing = Annotated[Authorized, requires(Action.QUERY_CLOSE, site=query_site_of)]


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
    auth: QueriesRead,
    status: str | None = None,
    subject_id: str | None = None,
) -> dict[str, Any]:
    """Queries at the sites the user sees, with their age in days."""
    platform = platform_of(request)
    today = platform.clock.now().date().isoformat()
    with platform.engine.connect() as connection:
        rows = list_queries(connection, study_id, sites=auth.sites, status=status, subject_id=subject_id)
    return {"queries": [{**row, "age_days": age_in_days(row, today)} for row in rows]}


@router.post("", status_code=201, responses=WRITE_ERRORS)
def post_query(study_id: str, body: OpenQueryRequest, request: Request, auth: Opening) -> JSONResponse:
    """Raise a manual query on an item (monitors and data managers)."""
    platform = platform_of(request)
    FormKey.parse(body.form)
    with platform.engine.connect() as connection:
        site_id = subject_site(connection, auth.principal, study_id, body.subject_id)
    command = qcmd.OpenQuery(body.subject_id, body.form, body.item, body.text)
    return execute(
        platform,
        auth.at_site(site_id).actor,
        request,
        body,
        lambda uow: handlers.open_manual_query(uow, study_id, site_id, command),
        _render(201),
    )


def _on_query(
    request: Request, auth: Authorized, body: Any, work: Callable[[UnitOfWork], list[RecordedEvent]]
) -> JSONResponse:
    return execute(platform_of(request), auth.actor, request, body, work, _render())


@router.post("/{query_id}/answer", responses=WRITE_ERRORS)
def post_answer(study_id: str, query_id: str, body: TextRequest, request: Request, auth: Answering) -> JSONResponse:
    """The site answers an open query."""
    command = qcmd.AnswerQuery(query_id, body.text)
    return _on_query(
        request, auth, body,
        lambda uow: handlers.answer_query(uow, study_id, command),
    )  # fmt: skip


@router.post("/{query_id}/requery", responses=WRITE_ERRORS)
def post_requery(study_id: str, query_id: str, body: TextRequest, request: Request, auth: Requerying) -> JSONResponse:
    """The answer did not resolve it: ask again."""
    command = qcmd.RequeryQuery(query_id, body.text)
    return _on_query(
        request, auth, body,
        lambda uow: handlers.requery_query(uow, study_id, command),
    )  # fmt: skip


@router.post("/{query_id}/close", responses=WRITE_ERRORS)
def post_close(study_id: str, query_id: str, body: CloseQueryRequest, request: Request, auth: Closing) -> JSONResponse:
    """Close a query (data managers and monitors only)."""
    command = qcmd.CloseQuery(query_id, body.resolution)
    return _on_query(
        request, auth, body,
        lambda uow: handlers.close_query(uow, study_id, command),
    )  # fmt: skip


@router.post("/{query_id}/cancel", responses=WRITE_ERRORS)
def post_cancel(study_id: str, query_id: str, body: ReasonRequest, request: Request, auth: Closing) -> JSONResponse:
    """Cancel a query raised in error, with the reason."""
    command = qcmd.CancelQuery(query_id, body.reason)
    return _on_query(
        request, auth, body,
        lambda uow: handlers.cancel_query(uow, study_id, command),
    )  # fmt: skip
