"""Running one write request: one unit of work, bounded retries, Idempotency-Key, If-Match.

Every write route hands a function of the unit of work to `execute`; the response is built from what that
function returned plus every event the unit appended (reactions included), inside the transaction, so a replayed
Idempotency-Key returns exactly the response of the first request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select

from trialstack.api.problems import PreconditionFailed, problem
from trialstack.bootstrap import Platform
from trialstack.clock import utc_timestamp
from trialstack.errors import InvalidInput
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.errors import ConcurrencyConflict
from trialstack.ledger.schema import api_idempotency
from trialstack.ledger.uow import UnitOfWork

T = TypeVar("T")
MAX_ATTEMPTS = 3
Render = Callable[[T, list[RecordedEvent]], tuple[int, dict[str, Any]]]


def if_match_version(request: Request) -> int | None:
    """The stream version named by If-Match (`"17"` or `W/"17"`), or None when the header is absent."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    text = header.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit()):  # "²" is a Unicode digit that int() refuses
        raise InvalidInput(f"If-Match must be the version from the ETag, got {header!r}", field="If-Match")
    return int(text)


def etag(version: int) -> str:
    return f'"{version}"'


def request_fingerprint(request: Request, body: BaseModel | None) -> str:
    """What makes two requests the same for Idempotency-Key: method, path and the parsed body."""
    text = body.model_dump_json() if body is not None else ""
    return hashlib.sha256(f"{request.method} {request.url.path}\n{text}".encode()).hexdigest()


def execute(
    platform: Platform,
    actor: Actor,
    request: Request,
    body_model: BaseModel | None,
    work: Callable[[UnitOfWork], T],
    render: Render[T],
    *,
    pinned_version: bool = False,
) -> JSONResponse:
    """Run `work` in a unit of work and answer with `render`; retry on a conflict unless If-Match pinned it."""
    key = request.headers.get("idempotency-key")
    fingerprint = request_fingerprint(request, body_model)
    correlation = request.headers.get("x-request-id")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with platform.unit_of_work(actor, correlation) as uow:
                if key is not None:
                    replay = _stored(uow, key, actor.id, fingerprint)
                    if replay is not None:
                        return replay
                result = work(uow)
                status, body = render(result, uow.settle())
                if key is not None:
                    _store(uow, key, actor.id, fingerprint, status, body)
                uow.commit()
        except ConcurrencyConflict as conflict:
            if pinned_version:
                raise PreconditionFailed(
                    f"{conflict.message}: reload and apply your change again", field="If-Match"
                ) from None
            if attempt == MAX_ATTEMPTS:
                raise
            continue
        response = JSONResponse(body, status_code=status)
        if "version" in body:
            response.headers["ETag"] = etag(int(body["version"]))
        return response
    raise AssertionError("unreachable")  # pragma: no cover


def _stored(uow: UnitOfWork, key: str, principal: str, fingerprint: str) -> JSONResponse | None:
    row = uow.connection.execute(
        select(api_idempotency.c.request_hash, api_idempotency.c.status, api_idempotency.c.body).where(
            api_idempotency.c.idempotency_key == key, api_idempotency.c.principal == principal
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        return problem(
            422,
            "Idempotency key reused",
            "this Idempotency-Key was used for a different request",
            "idempotency-key-reused",
            "Idempotency-Key",
        )
    response = JSONResponse(orjson.loads(row.body), status_code=row.status)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _store(uow: UnitOfWork, key: str, principal: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
    uow.connection.execute(
        api_idempotency.insert().values(
            idempotency_key=key,
            principal=principal,
            request_hash=fingerprint,
            status=status,
            body=orjson.dumps(body).decode(),
            created_at=utc_timestamp(uow.clock.now()),
        )
    )
