"""Read model of the webhook subscriptions: `rm_webhook_subscription`, one row per subscription.

`start_after` is the study_seq of the WebhookSubscribed event: a new subscription receives what happens after it
(an earlier position is a replay). Like every projection it is rebuilt from the ledger; where delivery stands is
operational state kept elsewhere (`ledger.schema.webhook_delivery`, `relay_position`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, RowMapping, String, Table, Text, select

from trialstack.integration.webhooks import events as ev
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.rowfold import FoldingProjection, Key, RowStore

readmodel_metadata = MetaData()

subscription_table = Table(
    "rm_webhook_subscription",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subscription_id", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("event_types", Text, nullable=False),
    Column("blinded", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("secret_ref", String(36), nullable=False),
    Column("status", String(12), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", String(27), nullable=False),
    Column("start_after", BigInteger, nullable=False),
    Column("disabled_by", String(64)),
    Column("disabled_at", String(27)),
    Column("disabled_reason", Text),
)

_WEBHOOK = frozenset(cls.__name__ for cls in ev.WEBHOOK_EVENTS)


class WebhookReadModel(FoldingProjection):
    name = "integration.webhooks"
    tables = (subscription_table,)
    event_types = _WEBHOOK

    def touches(self, event: RecordedEvent) -> Iterable[tuple[Table, Key]]:
        yield subscription_table, (event.study_id, event.payload["subscription_id"])

    def fold(self, event: RecordedEvent, rows: RowStore) -> None:
        payload = event.payload
        key = (event.study_id, payload["subscription_id"])
        if event.event_type == "WebhookSubscribed":
            rows.put(subscription_table, {
                "study_id": key[0], "subscription_id": key[1], "url": payload["url"],
                "event_types": json.dumps(payload["event_types"]), "blinded": 1 if payload["blinded"] else 0,
                "description": payload["description"], "secret_ref": payload["secret_ref"], "status": "active",
                "created_by": payload["created_by"], "created_at": event.recorded_at, "start_after": event.study_seq,
                "disabled_by": None, "disabled_at": None, "disabled_reason": None,
            })  # fmt: skip
            return
        row = rows.get(subscription_table, key)
        if row is not None and event.event_type == "WebhookDisabled":
            row.update(status="disabled", disabled_by=payload["disabled_by"], disabled_at=event.recorded_at,
                       disabled_reason=payload["reason"])  # fmt: skip
            rows.put(subscription_table, row)


@dataclass(frozen=True)
class SubscriptionRow:
    study_id: str
    subscription_id: str
    url: str
    event_types: tuple[str, ...]
    blinded: bool
    description: str
    secret_ref: str
    status: str
    created_by: str
    created_at: str
    start_after: int
    disabled_by: str | None
    disabled_at: str | None
    disabled_reason: str | None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def subscriber(self) -> str:
        """Its name in `relay_position`."""
        return subscriber_name(self.subscription_id)


def subscriber_name(subscription_id: str) -> str:
    return f"webhook:{subscription_id}"


def _row(values: RowMapping) -> SubscriptionRow:
    return SubscriptionRow(
        study_id=str(values["study_id"]),
        subscription_id=str(values["subscription_id"]),
        url=str(values["url"]),
        event_types=tuple(json.loads(values["event_types"])),
        blinded=bool(values["blinded"]),
        description=str(values["description"]),
        secret_ref=str(values["secret_ref"]),
        status=str(values["status"]),
        created_by=str(values["created_by"]),
        created_at=str(values["created_at"]),
        start_after=int(values["start_after"]),
        disabled_by=values["disabled_by"],
        disabled_at=values["disabled_at"],
        disabled_reason=values["disabled_reason"],
    )


def subscriptions(
    connection: Connection, study_id: str | None = None, *, active_only: bool = False
) -> list[SubscriptionRow]:
    """Subscriptions of a study (or of every study), oldest first."""
    statement = select(subscription_table)
    if study_id is not None:
        statement = statement.where(subscription_table.c.study_id == study_id)
    if active_only:
        statement = statement.where(subscription_table.c.status == "active")
    ordered = statement.order_by(
        subscription_table.c.study_id, subscription_table.c.start_after, subscription_table.c.subscription_id
    )
    return [_row(row._mapping) for row in connection.execute(ordered)]


def subscription(connection: Connection, study_id: str, subscription_id: str) -> SubscriptionRow | None:
    row = connection.execute(
        select(subscription_table).where(
            subscription_table.c.study_id == study_id, subscription_table.c.subscription_id == subscription_id
        )
    ).first()
    return _row(row._mapping) if row is not None else None
