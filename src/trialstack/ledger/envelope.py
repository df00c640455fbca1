"""What goes into the ledger (NewEvent) and what comes out (RecordedEvent)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused a change: a person by user id and role, or a machine (`system:rules`, `feed:central-lab`)."""

    id: str
    role: str
    on_behalf_of: str | None = None


SYSTEM_RULES = Actor(id="system:rules", role="system")


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event decided by a pure `decide` function, not yet in the ledger."""

    event_type: str
    payload: dict[str, Any]
    schema_version: int = 1
    reason: str | None = None
    occurred_at: datetime | None = None
    source: str | None = None
    external_id: str | None = None


class RecordedEvent(NamedTuple):
    """One row of `ledger_event`, exactly as stored (timestamps in the ledger's UTC text form).

    A NamedTuple rather than a dataclass: it is immutable and builds straight from a driver row, which keeps
    replay and verification cheap.
    """

    id: int | None
    study_id: str
    study_seq: int
    stream_type: str
    stream_id: str
    stream_version: int
    event_type: str
    schema_version: int
    payload_json: str
    actor_id: str
    actor_role: str
    on_behalf_of: str | None
    reason: str | None
    occurred_at: str
    recorded_at: str
    source: str | None
    external_id: str | None
    correlation_id: str | None
    causation_id: str | None
    prev_hash: str
    hash: str

    @property
    def payload(self) -> dict[str, Any]:
        """The payload, parsed from its stored canonical text."""
        value: dict[str, Any] = orjson.loads(self.payload_json)
        return value

    @property
    def event_ref(self) -> str:
        """A stable reference to this event, usable as a causation id: `<study>#<study_seq>`."""
        return f"{self.study_id}#{self.study_seq}"
