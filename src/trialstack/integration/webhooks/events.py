"""Events of the `integration` context: one `webhook` stream per subscription (`<study>/<subscription id>`), in the
study's own chain, so who subscribed what, and who stopped it, is in the audit trail like any other change.

No secret is ever in a payload: the signing secret is sealed in the vault (owner `webhook:<study>`) and the event
carries its reference.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type

CONTEXT = "integration"
ALL_EVENT_TYPES = "*"


class WebhookEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    subscription_id: str


@event_type(CONTEXT)
class WebhookSubscribed(WebhookEvent):
    """`event_types`: exact event type names, or `["*"]` for every event. `blinded`: the subscription never
    receives an event that reveals treatment (decided by who created it). `secret_ref`: the vault reference of the
    signing secret."""

    url: str
    event_types: list[str]
    blinded: bool
    description: str
    secret_ref: str
    created_by: str


@event_type(CONTEXT)
class WebhookDisabled(WebhookEvent):
    """Nothing more is delivered to the subscription; its dead letters stay visible."""

    reason: str
    disabled_by: str


WEBHOOK_EVENTS: tuple[type[WebhookEvent], ...] = (WebhookSubscribed, WebhookDisabled)
