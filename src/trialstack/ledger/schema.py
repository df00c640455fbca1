"""The ledger's tables (SQLAlchemy Core). Migrations in `migrations/` create them; this module describes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

ledger_metadata = MetaData()


class UtcTimestamp(TypeDecorator[str]):
    """A UTC moment kept as `timestamptz` on PostgreSQL and as fixed-width ISO text on SQLite.

    Python always sees the ledger's text form (`2026-01-05T09:30:00.000000Z`), the one the hash chain covers,
    so a value read back hashes to the same bytes on either backend.
    """

    impl = String(27)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(String(27))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return value  # type: ignore[no-any-return]


ledger_event = Table(
    "ledger_event",
    ledger_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("study_id", String(64), nullable=False),
    Column("study_seq", BigInteger, nullable=False),
    Column("stream_type", String(64), nullable=False),
    Column("stream_id", String(200), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("actor_role", String(64), nullable=False),
    Column("on_behalf_of", String(200)),
    Column("reason", Text),
    Column("occurred_at", UtcTimestamp, nullable=False),
    Column("recorded_at", UtcTimestamp, nullable=False),
    Column("source", String(100)),
    Column("external_id", String(200)),
    Column("correlation_id", String(100)),
    Column("causation_id", String(100)),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("study_id", "study_seq", name="uq_ledger_event_study_seq"),
    UniqueConstraint("stream_type", "stream_id", "stream_version", name="uq_ledger_event_stream_version"),
    UniqueConstraint("source", "external_id", name="uq_ledger_event_source_external_id"),
)
Index("ix_ledger_event_event_type", ledger_event.c.study_id, ledger_event.c.event_type)

study_head = Table(
    "study_head",
    ledger_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

relay_position = Table(
    "relay_position",
    ledger_metadata,
    Column("subscriber", String(100), primary_key=True),
    Column("study_id", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

projection_state = Table(
    "projection_state",
    ledger_metadata,
    Column("name", String(100), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
)

api_idempotency = Table(
    "api_idempotency",
    ledger_metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("principal", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
)

webhook_delivery = Table(
    "webhook_delivery",
    ledger_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subscription_id", String(64), primary_key=True),
    Column("study_seq", BigInteger),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(27)),
    Column("last_attempt_at", String(27)),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_seq", BigInteger),
    Column("delivered_at", String(27)),
    Column("rewind_to", BigInteger),
    Column("lease_owner", String(100)),
    Column("lease_until", String(27)),
)
"""Where each webhook subscription's delivery stands (operational, not clinical: migration 0007). Its position is
in `relay_position` (subscriber `webhook:<id>`); this row holds the event being retried (`study_seq`, `attempts`,
`next_attempt_at`), the last outcome, a requested replay from a position (`rewind_to`) and the lease that keeps
one delivery in flight per subscription across deliverer processes."""

webhook_dead_letter = Table(
    "webhook_dead_letter",
    ledger_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subscription_id", String(64), primary_key=True),
    Column("study_seq", BigInteger, primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text, nullable=False),
    Column("dead_at", String(27), nullable=False),
    Column("state", String(12), nullable=False),
    Column("replay_requested_by", String(200)),
    Column("replay_requested_at", String(27)),
    Column("delivered_at", String(27)),
)
"""Events a subscription gave up on after the last attempt (`state` dead), asked to be sent again (replaying), or
sent later by a replay (delivered)."""
Index(
    "ix_webhook_dead_letter_state",
    webhook_dead_letter.c.study_id,
    webhook_dead_letter.c.subscription_id,
    webhook_dead_letter.c.state,
)

LEDGER_COLUMNS = [c.name for c in ledger_event.columns]
