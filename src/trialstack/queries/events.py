"""Events of the queries context. A query is one stream: opened, answered, re-queried, closed or cancelled."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from trialstack.ledger.registry import event_type

CONTEXT = "queries"


class QueryEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@event_type(CONTEXT)
class QueryOpened(QueryEvent):
    """`check_id` is set for a system query raised by an edit check (or a reconciliation discrepancy); a manual
    query has none. `addressed_to` names the role a system query is for when it is not the site's data to correct
    (a lab result of a withdrawn subject is the data manager's)."""

    query_id: str
    subject_id: str
    site_id: str
    form: str
    item: str
    text: str
    check_id: str | None = None
    opened_on: str
    addressed_to: str | None = None

    @model_serializer(mode="wrap")
    def _addressee_only_when_named(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave `addressed_to` out while None: every query opened before it existed keeps its canonical bytes."""
        data: dict[str, Any] = handler(self)
        if data.get("addressed_to") is None:
            data.pop("addressed_to", None)
        return data


@event_type(CONTEXT)
class QueryAnswered(QueryEvent):
    query_id: str
    text: str


@event_type(CONTEXT)
class QueryRequeried(QueryEvent):
    """The answer did not resolve it: the query is open again with a new question."""

    query_id: str
    text: str


@event_type(CONTEXT)
class QueryClosed(QueryEvent):
    """Resolved; `automatic` when the edit check that opened it holds again after a correction."""

    query_id: str
    resolution: str
    automatic: bool = False


@event_type(CONTEXT)
class QueryCancelled(QueryEvent):
    query_id: str
