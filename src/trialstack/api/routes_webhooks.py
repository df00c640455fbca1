"""Webhook endpoints: a study's subscriptions (list, subscribe, disable), their dead letters, and replays.

Everything needs `webhook.manage` in the study (admin, data manager, unblinded pharmacist). An unblinded
subscription, which receives the events that reveal treatment, is created only by a user who also holds
`allocation.read` at every site of the study (it streams every site's allocations); anyone else's is blinded. A
blinded caller is never shown a dead letter of an event that reveals treatment.

Subscribing and disabling are ledger events (through `execute`: one unit of work, retries, Idempotency-Key); the
signing secret is in the answer to the subscription only (a replayed Idempotency-Key answers `secret: null`: the
secret is never stored outside the vault). A replay is operational state for the deliverer (`202 Accepted`).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from trialstack.api.commands import execute
from trialstack.api.openapi import AUTHENTICATED_ERRORS, WRITE_ERRORS
from trialstack.api.platform import platform_of
from trialstack.api.schemas import Body
from trialstack.api.security import Authorized, requires
from trialstack.clock import utc_timestamp
from trialstack.errors import NotFound
from trialstack.identity.policy import Action, authorize_at_every_site
from trialstack.integration.webhooks import commands as cmd
from trialstack.integration.webhooks import delivery, handlers
from trialstack.integration.webhooks.model import MAX_DESCRIPTION_LENGTH, MAX_EVENT_TYPES, MAX_URL_LENGTH
from trialstack.integration.webhooks.readmodel import SubscriptionRow, subscription, subscriptions
from trialstack.integration.webhooks.settings import allowed_hosts
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import is_blinded
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.readmodel import version_in_force

router = APIRouter(prefix="/api/v1/studies/{study_id}/webhooks", tags=["webhooks"], responses=AUTHENTICATED_ERRORS)
Manage = Annotated[Authorized, requires(Action.WEBHOOK_MANAGE, site=None)]
SubscriptionPath = Annotated[str, Path(min_length=1, max_length=64, description="The subscription id (wh_…)")]
MAX_SEQ = 2**63 - 1


class SubscriptionRequest(Body):
    """A webhook: where to send, which event types (`*`: every one), and whether it is unblinded."""

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, description="http(s) URL on an allowed host")
    event_types: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=MAX_EVENT_TYPES
    )
    unblinded: bool = Field(default=False, description="Receive the events that reveal treatment too")
    description: str = Field(default="", max_length=MAX_DESCRIPTION_LENGTH)


class DisableRequest(Body):
    reason: str = Field(min_length=1, max_length=1000, description="Why (recorded in the audit trail)")


class ReplayRequest(Body):
    """Exactly one of: a dead letter (`study_seq`), every dead letter (`all_dead_letters`), or every event the
    subscription receives from a position on (`from_seq`)."""

    study_seq: int | None = Field(default=None, ge=1, le=MAX_SEQ)
    all_dead_letters: bool = False
    from_seq: int | None = Field(default=None, ge=1, le=MAX_SEQ)

    @model_validator(mode="after")
    def one_kind(self) -> ReplayRequest:
        given = [self.study_seq is not None, self.all_dead_letters, self.from_seq is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of study_seq, all_dead_letters or from_seq")
        return self


def _found(request: Request, study_id: str, subscription_id: str) -> SubscriptionRow:
    with platform_of(request).engine.connect() as connection:
        found = subscription(connection, study_id, subscription_id)
    if found is None:
        raise NotFound(f"webhook {subscription_id} not found in study {study_id}", field="subscription_id")
    return found


def _subscription_json(sub: SubscriptionRow, status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subscription_id": sub.subscription_id,
        "url": sub.url,
        "event_types": list(sub.event_types),
        "blinded": sub.blinded,
        "description": sub.description,
        "status": sub.status,
        "created_by": sub.created_by,
        "created_at": sub.created_at,
        "disabled_by": sub.disabled_by,
        "disabled_at": sub.disabled_at,
        "disabled_reason": sub.disabled_reason,
    }
    if status is not None:
        body["delivery"] = status
    return body


def _events_json(events: list[RecordedEvent]) -> list[dict[str, Any]]:
    return [{"study_seq": e.study_seq, "event_type": e.event_type, "stream_id": e.stream_id} for e in events]


@router.get("")
def get_webhooks(study_id: str, request: Request, auth: Manage) -> dict[str, Any]:
    """The study's webhook subscriptions (never their secrets) with where each one's delivery stands."""
    with platform_of(request).engine.connect() as connection:
        found = subscriptions(connection, study_id)
        rows = [_subscription_json(sub, delivery.delivery_status(connection, sub)) for sub in found]
    return {"webhooks": rows}


@router.get("/{subscription_id}")
def get_webhook(study_id: str, subscription_id: SubscriptionPath, request: Request, auth: Manage) -> dict[str, Any]:
    """One subscription with where its delivery stands."""
    sub = _found(request, study_id, subscription_id)
    with platform_of(request).engine.connect() as connection:
        return _subscription_json(sub, delivery.delivery_status(connection, sub))


@router.post("", status_code=201, responses=WRITE_ERRORS)
def post_webhook(study_id: str, body: SubscriptionRequest, request: Request, auth: Manage) -> JSONResponse:
    """Subscribe a URL to the study's events. The URL must be http(s) on a host of
    TRIALSTACK_WEBHOOK_ALLOWED_HOSTS (refused naming the URL and why, 422, nothing written). The answer holds the
    signing secret (`whsec_…`) once: keep it to verify the `webhook-signature` of each delivery."""
    platform = platform_of(request)
    if body.unblinded:
        with platform.engine.connect() as connection:
            version = version_in_force(connection, study_id)
        if version is None:
            raise NotFound(f"study {study_id} is not loaded", field="study")
        sites = [site.id for site in version.definition.sites]
        authorize_at_every_site(auth.principal, Action.ALLOCATION_READ, study_id, sites)
    command = cmd.SubscribeWebhook(body.url, tuple(body.event_types), body.unblinded, body.description)
    made: list[handlers.Subscribed] = []

    def work(uow: UnitOfWork) -> handlers.Subscribed:
        subscribed = handlers.subscribe(uow, study_id, auth.principal.username, command, allowed_hosts=allowed_hosts())
        made[:] = [subscribed]
        return subscribed

    def render(result: handlers.Subscribed, events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        payload = result.events[0].payload
        return 201, {
            "subscription_id": result.subscription_id,
            "url": payload["url"],
            "event_types": payload["event_types"],
            "blinded": payload["blinded"],
            "description": payload["description"],
            "secret": None,
            "events": _events_json(events),
        }

    response = execute(platform, auth.actor, request, body, work, render)
    if not made or response.status_code != 201 or "idempotent-replayed" in response.headers:
        return response
    answer = orjson.loads(bytes(response.body))
    answer["secret"] = made[0].secret  # never in the stored idempotent answer: the vault is its only home
    return JSONResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})


@router.post("/{subscription_id}/disable", responses=WRITE_ERRORS)
def post_disable(
    study_id: str, subscription_id: SubscriptionPath, body: DisableRequest, request: Request, auth: Manage
) -> JSONResponse:
    """Stop delivering to the subscription (WebhookDisabled, with the reason); its dead letters stay listed.
    Disabling it again changes nothing."""
    command = cmd.DisableWebhook(subscription_id, body.reason)

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        return handlers.disable(uow, study_id, auth.principal.username, command)

    def render(result: list[RecordedEvent], events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        return 200, {"subscription_id": subscription_id, "status": "disabled", "events": _events_json(events)}

    return execute(platform_of(request), auth.actor, request, body, work, render)


@router.get("/{subscription_id}/dead-letters")
def get_dead_letters(
    study_id: str, subscription_id: SubscriptionPath, request: Request, auth: Manage
) -> dict[str, Any]:
    """Events the subscription gave up on after its last attempt (`dead`) or asked to be sent again
    (`replaying`), in study order, with the attempts and the last error. A blinded caller is not shown those of
    events that reveal treatment (`hidden` counts them)."""
    sub = _found(request, study_id, subscription_id)
    with platform_of(request).engine.connect() as connection:
        letters = delivery.dead_letters(connection, sub)
    shown = [row for row in letters if auth.unblinded or not is_blinded(str(row["event_type"]))]
    keys = ("study_seq", "event_type", "attempts", "last_status", "last_error", "dead_at", "state",
            "replay_requested_by", "replay_requested_at")  # fmt: skip
    return {
        "subscription_id": subscription_id,
        "dead_letters": [{key: row[key] for key in keys} for row in shown],
        "hidden": len(letters) - len(shown),
    }


@router.post("/{subscription_id}/replay", status_code=202, responses=WRITE_ERRORS)
def post_replay(
    study_id: str, subscription_id: SubscriptionPath, body: ReplayRequest, request: Request, auth: Manage
) -> JSONResponse:
    """Send again: one dead letter, every dead letter, or every event the subscription receives from a position on
    (at most one past where it is: a replay never skips). The deliverer sends replayed dead letters before newer
    events; a replay from a position restarts the subscription there, in order."""

    def work(uow: UnitOfWork) -> dict[str, Any]:
        if body.from_seq is not None:
            was = delivery.replay_from(uow.connection, study_id, subscription_id, body.from_seq)
            return {"from_seq": body.from_seq, "position_was": was}
        seqs = None if body.all_dead_letters else [int(body.study_seq or 0)]
        at = utc_timestamp(uow.clock.now())
        return {"dead_letters": delivery.replay_dead_letters(uow.connection, study_id, subscription_id, seqs,
                                                             auth.actor.id, at)}  # fmt: skip

    def render(result: dict[str, Any], events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        return 202, {"subscription_id": subscription_id, **result}

    return execute(platform_of(request), auth.actor, request, body, work, render)
