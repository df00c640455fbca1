"""A subject's data clarifications with their whole conversation, as the clinical data export carries them.

The query read model says which queries a subject has; each query's stream gives every message in order:
the question (or re-query), the site's answers, the closing note. Only events up to `as_of` (a study_seq)
are read, so an export made while sites work shows one consistent moment of the ledger. A query is keyed
by what it is raised on: the form instance and item, or the visit and `VISIT_DATE` for a visit date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import decode
from trialstack.queries import events as ev
from trialstack.queries.handlers import QUERY, stream_id
from trialstack.queries.readmodel import query_table
from trialstack.standards.clinical import QueryMessage, QueryRecord, QueryStatus

_STATUS: dict[type[ev.QueryEvent], QueryStatus] = {
    ev.QueryOpened: "open",
    ev.QueryRequeried: "open",
    ev.QueryAnswered: "answered",
    ev.QueryClosed: "closed",
    ev.QueryCancelled: "closed",
}


def subject_queries(
    connection: Connection, study_id: str, subject_id: str, as_of: int
) -> Mapping[tuple[str, str], Sequence[QueryRecord]]:
    """The subject's queries as of `as_of`, by (form instance or visit, item), each in query-id order."""
    rows = connection.execute(
        select(query_table.c.query_id, query_table.c.form, query_table.c.item)
        .where(query_table.c.study_id == study_id, query_table.c.subject_id == subject_id)
        .order_by(query_table.c.query_id)
    ).all()
    found: dict[tuple[str, str], list[QueryRecord]] = {}
    for query_id, form, item in rows:
        events = [
            e for e in store.read_stream(connection, QUERY, stream_id(study_id, query_id)) if e.study_seq <= as_of
        ]
        if events:
            found.setdefault((form, item), []).append(query_record(query_id, events))
    return found


def query_record(query_id: str, events: Sequence[RecordedEvent]) -> QueryRecord:
    """One query from its events: a message per event (the site answers; the sponsor side asks and closes)."""
    messages = []
    status: QueryStatus = "open"
    for recorded in events:
        event = decode(recorded)
        if not isinstance(event, ev.QueryEvent):
            continue
        status = _STATUS.get(type(event), status)
        text = _text(event, recorded.reason)
        at = datetime.fromisoformat(recorded.recorded_at)
        messages.append(QueryMessage(recorded.actor_id, at, text, from_site=isinstance(event, ev.QueryAnswered)))
    return QueryRecord(query_id, status, tuple(messages))


def _text(event: ev.QueryEvent, reason: str | None) -> str:
    if isinstance(event, ev.QueryOpened | ev.QueryAnswered | ev.QueryRequeried):
        return event.text
    if isinstance(event, ev.QueryClosed):
        return f"closed automatically: {event.resolution}" if event.automatic else f"closed: {event.resolution}"
    return f"cancelled: {reason}" if reason else "cancelled"
