"""Events of the protocol context: publishing a StudyVersion."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type


class ProtocolEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@event_type("protocol")
class StudyVersionPublished(ProtocolEvent):
    """A StudyVersion is in force from this event on; the ledger carries the whole definition, so a replay
    (or an auditor) knows exactly which protocol every later event was decided under."""

    study_id: str
    version_hash: str
    protocol_version: str
    definition: dict[str, Any]
    source_format: str
    source_name: str | None = None
