"""The transactional outbox: one row per new event, written in the same transaction, relayed later."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import Connection

from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import context_of
from trialstack.ledger.schema import outbox

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def subject_for(event: RecordedEvent) -> str:
    """NATS subject `trialstack.<study>.<context>.<EventType>` (tokens sanitized: no dots, spaces or wildcards)."""
    study = _UNSAFE.sub("_", event.study_id)
    return f"trialstack.{study}.{context_of(event.event_type)}.{event.event_type}"


def write_outbox(connection: Connection, events: Sequence[RecordedEvent], created_at: str) -> None:
    if events:
        connection.execute(
            outbox.insert(),
            [
                {
                    "study_id": e.study_id,
                    "study_seq": e.study_seq,
                    "subject": subject_for(e),
                    "created_at": created_at,
                    "attempts": 0,
                }
                for e in events
            ],
        )
