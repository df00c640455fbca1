"""Webhook subscription use cases: subscribe (the secret made here, sealed in the vault, shown once), disable.

Each runs in the adapter's unit of work; authorization (webhook.manage, and allocation.read at every site for an
unblinded subscription) is the adapter's, before the handler, as everywhere.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from trialstack.clock import utc_timestamp
from trialstack.errors import NotFound
from trialstack.integration.webhooks import commands as cmd
from trialstack.integration.webhooks import events as ev
from trialstack.integration.webhooks.model import Subscription, decide_disable, decide_subscribe, evolve
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import decode, encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.ledger.vault import Vault
from trialstack.protocol.readmodel import version_in_force

WEBHOOK = "webhook"
SECRET_PREFIX = "whsec_"


def stream_id(study_id: str, subscription_id: str) -> str:
    return f"{study_id}/{subscription_id}"


def vault_owner(study_id: str) -> str:
    """The vault owner the study's webhook secrets are sealed under."""
    return f"webhook:{study_id}"


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def new_subscription_id() -> str:
    return "wh_" + secrets.token_hex(8)


def _fold(state: Subscription, events: Sequence[RecordedEvent]) -> Subscription:
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, ev.WebhookEvent):
            state = evolve(payload, state)
    return replace(state, version=events[-1].stream_version) if events else state


def load_subscription(uow: UnitOfWork, study_id: str, subscription_id: str) -> Subscription:
    return uow.load(WEBHOOK, stream_id(study_id, subscription_id), Subscription(study_id, subscription_id), _fold)


def _append(uow: UnitOfWork, state: Subscription, events: Sequence[ev.WebhookEvent]) -> list[RecordedEvent]:
    if not events:
        return []
    return uow.append(
        state.study_id, WEBHOOK, stream_id(state.study_id, state.subscription_id), [encode(e) for e in events],
        expected_version=state.version,
    )  # fmt: skip


@dataclass(frozen=True)
class Subscribed:
    subscription_id: str
    secret: str
    """The signing secret, in this answer only (the ledger holds its vault reference)."""
    events: list[RecordedEvent]


def subscribe(
    uow: UnitOfWork,
    study_id: str,
    username: str,
    command: cmd.SubscribeWebhook,
    *,
    allowed_hosts: Sequence[str],
    subscription_id: str | None = None,
) -> Subscribed:
    """WebhookSubscribed with a fresh secret sealed under `webhook:<study>`; a refusal writes nothing (the unit of
    work rolls the sealing back with everything else)."""
    if version_in_force(uow.connection, study_id) is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    state = load_subscription(uow, study_id, subscription_id or new_subscription_id())
    secret = new_secret()
    sealed = uow.vault.seal(uow.connection, vault_owner(study_id), [secret], utc_timestamp(uow.clock.now()))[0]
    decided = decide_subscribe(state, command, secret_ref=sealed.ref, username=username, allowed_hosts=allowed_hosts)
    return Subscribed(state.subscription_id, secret, _append(uow, state, decided))


def disable(uow: UnitOfWork, study_id: str, username: str, command: cmd.DisableWebhook) -> list[RecordedEvent]:
    state = load_subscription(uow, study_id, command.subscription_id)
    return _append(uow, state, decide_disable(state, command, username))


def reveal_secret(connection: Connection, vault: Vault, study_id: str, secret_ref: str) -> str | None:
    """The subscription's signing secret from the vault (None if it is gone)."""
    return vault.reveal(connection, vault_owner(study_id), [secret_ref]).get(secret_ref)
