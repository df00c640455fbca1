"""Commands of the webhook subscriptions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SubscribeWebhook:
    """`unblinded`: the adapter sets it only for a user holding allocation.read at every site of the study."""

    url: str
    event_types: tuple[str, ...] = ("*",)
    unblinded: bool = False
    description: str = ""


@dataclass(frozen=True)
class DisableWebhook:
    subscription_id: str
    reason: str
