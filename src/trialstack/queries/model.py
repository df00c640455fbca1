"""The life of one query: open → answered → re-queried (open again) or closed; cancelled. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from trialstack.errors import DomainRuleViolation, InvalidInput
from trialstack.queries import commands as cmd
from trialstack.queries import events as ev


class QueryStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Query:
    query_id: str
    status: QueryStatus | None = None
    subject_id: str = ""
    site_id: str = ""
    form: str = ""
    item: str = ""
    check_id: str | None = None
    version: int = 0

    @property
    def is_system(self) -> bool:
        return self.check_id is not None


def evolve(event: ev.QueryEvent, state: Query) -> Query:
    if isinstance(event, ev.QueryOpened):
        return replace(
            state,
            status=QueryStatus.OPEN,
            subject_id=event.subject_id,
            site_id=event.site_id,
            form=event.form,
            item=event.item,
            check_id=event.check_id,
        )
    if isinstance(event, ev.QueryAnswered):
        return replace(state, status=QueryStatus.ANSWERED)
    if isinstance(event, ev.QueryRequeried):
        return replace(state, status=QueryStatus.OPEN)
    if isinstance(event, ev.QueryClosed):
        return replace(state, status=QueryStatus.CLOSED)
    if isinstance(event, ev.QueryCancelled):
        return replace(state, status=QueryStatus.CANCELLED)
    return state


def _text(text: str, field: str) -> str:
    if not text.strip():
        raise InvalidInput(f"{field} cannot be blank", field=field)
    return text.strip()


def open_query(query_id: str, subject_id: str, site_id: str, command: cmd.OpenQuery, today: str) -> list[ev.QueryEvent]:
    return [
        ev.QueryOpened(
            query_id=query_id,
            subject_id=subject_id,
            site_id=site_id,
            form=command.form,
            item=command.item,
            text=_text(command.text, "text"),
            opened_on=today,
        )
    ]


def answer(state: Query, command: cmd.AnswerQuery) -> list[ev.QueryEvent]:
    if state.status is not QueryStatus.OPEN:
        raise DomainRuleViolation(f"query {state.query_id} is {state.status}: only an open query can be answered")
    return [ev.QueryAnswered(query_id=state.query_id, text=_text(command.text, "text"))]


def requery(state: Query, command: cmd.RequeryQuery) -> list[ev.QueryEvent]:
    if state.status is not QueryStatus.ANSWERED:
        raise DomainRuleViolation(f"query {state.query_id} is {state.status}: only an answered query can be re-queried")
    return [ev.QueryRequeried(query_id=state.query_id, text=_text(command.text, "text"))]


def close(state: Query, command: cmd.CloseQuery) -> list[ev.QueryEvent]:
    if state.status not in (QueryStatus.OPEN, QueryStatus.ANSWERED):
        raise DomainRuleViolation(f"query {state.query_id} is {state.status}: it cannot be closed")
    return [ev.QueryClosed(query_id=state.query_id, resolution=_text(command.resolution, "resolution"))]


def cancel(state: Query, command: cmd.CancelQuery) -> list[ev.QueryEvent]:
    if state.status not in (QueryStatus.OPEN, QueryStatus.ANSWERED):
        raise DomainRuleViolation(f"query {state.query_id} is {state.status}: it cannot be cancelled")
    _text(command.reason, "reason")
    return [ev.QueryCancelled(query_id=state.query_id)]


def close_automatically(state: Query, resolution: str) -> list[ev.QueryEvent]:
    """A system query closes itself when its check holds again; a query already closed stays as it is."""
    if state.status not in (QueryStatus.OPEN, QueryStatus.ANSWERED):
        return []
    return [ev.QueryClosed(query_id=state.query_id, resolution=resolution, automatic=True)]
