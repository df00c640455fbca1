"""The outbox is the ledger itself: relays read each study's events after their own position.

`study_seq` is contiguous per study and a number becomes visible only when its transaction commits (appends to
a study are serialized), so reading `study_seq > position` never skips an event, and an event that rolled back
was never there. That gives the transactional-outbox guarantee without writing every event twice
(docs/decisions/0002-ledger-is-the-outbox.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import context_of
from trialstack.ledger.schema import relay_position, study_head

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def subject_for(event: RecordedEvent) -> str:
    """NATS subject `trialstack.<study>.<context>.<EventType>` (tokens sanitized: no dots or wildcards)."""
    study = _UNSAFE.sub("_", event.study_id)
    return f"trialstack.{study}.{context_of(event.event_type)}.{event.event_type}"


@dataclass(frozen=True)
class OutboxMessage:
    subject: str
    event: RecordedEvent


def position(connection: Connection, subscriber: str, study_id: str) -> int:
    value = connection.execute(
        select(relay_position.c.last_seq).where(
            relay_position.c.subscriber == subscriber, relay_position.c.study_id == study_id
        )
    ).scalar()
    return int(value or 0)


def pending(connection: Connection, subscriber: str, limit: int = 1_000) -> list[OutboxMessage]:
    """Messages this subscriber has not acknowledged yet, study by study, in study order."""
    messages: list[OutboxMessage] = []
    for study_id, last_seq in connection.execute(select(study_head.c.study_id, study_head.c.last_seq)):
        after = position(connection, subscriber, str(study_id))
        if after < int(last_seq):
            page = store.read_study(connection, str(study_id), after, limit - len(messages))
            messages.extend(OutboxMessage(subject_for(e), e) for e in page)
        if len(messages) >= limit:
            break
    return messages


def acknowledge(connection: Connection, subscriber: str, study_id: str, study_seq: int) -> None:
    """Record that everything up to `study_seq` was delivered (at-least-once: call after the publish)."""
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(relay_position).values(subscriber=subscriber, study_id=study_id, last_seq=study_seq)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["subscriber", "study_id"], set_={"last_seq": statement.excluded.last_seq}
        )
    )
