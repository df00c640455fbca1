"""Running a command from a page exactly as the API runs it: `api.commands.execute` (one unit of work, bounded
retries, Idempotency-Key, version pinning), rendered by the API's own renderer, so a page shows what the API
would have answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel

from trialstack.api.commands import Render, execute
from trialstack.api.platform import platform_of
from trialstack.errors import InvalidInput
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.uow import UnitOfWork

T = TypeVar("T")


def event_summary(_result: object, events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
    """A renderer for commands whose page needs only what happened: the events, reactions included."""
    return 200, {
        "events": [{"event_type": e.event_type, "stream_id": e.stream_id, "payload": e.payload} for e in events]
    }


def run(
    request: Request,
    actor: Actor,
    body: BaseModel | None,
    work: Callable[[UnitOfWork], T],
    render: Render[T],
    *,
    pinned: bool = False,
) -> dict[str, Any]:
    """Execute `work` as `actor`; returns the rendered body. A refused replay of an Idempotency-Key is InvalidInput."""
    response = execute(platform_of(request), actor, request, body, work, render, pinned_version=pinned)
    data: dict[str, Any] = orjson.loads(bytes(response.body))
    if response.status_code >= 400:
        raise InvalidInput(str(data.get("detail", "the request was refused")), field=data.get("field"))
    return data
