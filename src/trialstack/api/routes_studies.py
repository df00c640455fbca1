"""Study endpoints: the studies a user can see, the definition in force, and the ledger feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from trialstack.api.openapi import AUTHENTICATED_ERRORS
from trialstack.api.platform import platform_of
from trialstack.api.security import Authorized, current_principal, requires
from trialstack.identity.policy import Action, Principal
from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import is_blinded
from trialstack.protocol.readmodel import list_versions, version_in_force

router = APIRouter(prefix="/api/v1/studies", tags=["studies"], responses=AUTHENTICATED_ERRORS)
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
StudyRead = Annotated[Authorized, requires(Action.STUDY_READ, site=None)]
EventsRead = Annotated[Authorized, requires(Action.EVENTS_READ, site=None)]
SSE_POLL_SECONDS = 1.0
MAX_SEQ = 2**63 - 1  # study_seq is a 64-bit integer in both databases: a larger `after` cannot be sent to them
SSE = "text/event-stream"
# One server-sent event (OpenAPI 3.1: the schema of an event-stream describes each event): `id` is the
# study_seq, `event` the event type, `data` the event as JSON (the feed's shape); comments and `retry` aside.
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}


@router.get("")
def get_studies(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """The studies the user holds a role in, with the StudyVersion in force."""
    studies = sorted({grant.study_id for grant in principal.grants})
    with platform_of(request).engine.connect() as connection:
        versions = [v for v in list_versions(connection) if v.in_force and v.study_id in studies]
    return {
        "studies": [
            {"study_id": v.study_id, "version_hash": v.version_hash, "protocol_version": v.protocol_version}
            for v in versions
        ]
    }


@router.get("/{study_id}")
def get_study(study_id: str, request: Request, auth: StudyRead) -> dict[str, Any]:
    """The StudyVersion in force: its hash and its whole definition."""
    with platform_of(request).engine.connect() as connection:
        version = version_in_force(connection, study_id)
        history = list_versions(connection, study_id)
    if version is None:
        return {"study_id": study_id, "loaded": False, "versions": []}
    return {
        "study_id": study_id,
        "loaded": True,
        "version_hash": version.hash,
        "definition": version.definition.model_dump(mode="json", exclude_defaults=True),
        "versions": [v.__dict__ for v in history],
    }


@router.get("/{study_id}/events")
def get_events(
    study_id: str,
    request: Request,
    auth: EventsRead,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="Return events with study_seq greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """A page of the study's ledger, in order. Events that would unblind are left out for blinded users."""
    unblinded = auth.unblinded
    with platform_of(request).engine.connect() as connection:
        page = store.read_study(connection, study_id, after, limit)
    events = [_event_json(e) for e in page if unblinded or not is_blinded(e.event_type)]
    last = page[-1].study_seq if page else after
    return {"events": events, "next_after": last, "more": len(page) == limit}


def _is_position(text: str) -> bool:
    """A Last-Event-ID the feed can resume from: ASCII digits (not any Unicode digit) within 64 bits."""
    return text.isascii() and text.isdigit() and int(text) <= MAX_SEQ


def _event_json(e: RecordedEvent) -> dict[str, Any]:
    return {
        "study_seq": e.study_seq,
        "event_type": e.event_type,
        "stream_type": e.stream_type,
        "stream_id": e.stream_id,
        "stream_version": e.stream_version,
        "payload": e.payload,
        "actor_id": e.actor_id,
        "actor_role": e.actor_role,
        "reason": e.reason,
        "occurred_at": e.occurred_at,
        "recorded_at": e.recorded_at,
        "hash": e.hash,
    }


@router.get(
    "/{study_id}/events/stream",
    response_class=StreamingResponse,
    responses={
        200: {"description": "Server-sent events, one per ledger event", "content": {SSE: {"schema": SSE_EVENT}}}
    },
)
async def stream_events(
    study_id: str,
    request: Request,
    auth: EventsRead,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    max_seconds: Annotated[
        float, Query(ge=0, le=3600, description="End the stream after this long (clients reconnect with Last-Event-ID)")
    ] = 55.0,
) -> StreamingResponse:
    """Server-sent events: the ledger live, from `after` (or the Last-Event-ID header), blinded like the feed.

    The stream ends after `max_seconds` (0: send what is there and end); EventSource clients reconnect by
    themselves and resume from the Last-Event-ID they were sent.
    """
    unblinded = auth.unblinded
    last_id = request.headers.get("last-event-id")
    position = int(last_id) if last_id and _is_position(last_id) else after
    platform = platform_of(request)

    def read(after_seq: int) -> list[RecordedEvent]:
        with platform.engine.connect() as connection:
            return store.read_study(connection, study_id, after_seq, 200)

    async def events() -> AsyncIterator[str]:
        nonlocal position
        yield "retry: 2000\n\n"
        deadline = asyncio.get_running_loop().time() + max_seconds
        while not await request.is_disconnected():
            page = await run_in_threadpool(read, position)
            for event in page:
                if await request.is_disconnected():
                    return  # the client left mid-page: write no more to a closed connection
                position = event.study_seq
                if unblinded or not is_blinded(event.event_type):
                    data = orjson.dumps(_event_json(event)).decode()
                    yield f"id: {event.study_seq}\nevent: {event.event_type}\ndata: {data}\n\n"
            if len(page) < 200 and asyncio.get_running_loop().time() >= deadline:
                return
            if not page:
                yield ": keep-alive\n\n"
                await asyncio.sleep(SSE_POLL_SECONDS)

    return StreamingResponse(events(), media_type=SSE, headers={"Cache-Control": "no-cache"})
