"""The protocol stream of a study: which versions were published, and which one is in force. Pure."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from trialstack.errors import DomainRuleViolation
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.events import StudyVersionPublished


@dataclass(frozen=True)
class ProtocolHistory:
    study_id: str
    published: tuple[str, ...] = ()

    @property
    def in_force(self) -> str | None:
        return self.published[-1] if self.published else None


def evolve(state: ProtocolHistory, event: StudyVersionPublished) -> ProtocolHistory:
    return ProtocolHistory(state.study_id, (*state.published, event.version_hash))


def decide_publish(state: ProtocolHistory, command: PublishStudyVersion) -> list[StudyVersionPublished]:
    """Publish unless the same content is already in force (loading identical content again is a no-op)."""
    version = command.version
    study_id = version.definition.study.id
    if study_id != state.study_id:
        raise DomainRuleViolation(
            f"definition is for study {study_id!r}, expected {state.study_id!r}", field="study.id"
        )
    if state.in_force == version.hash:
        return []
    if state.published and not command.reason:
        raise DomainRuleViolation(
            "publishing an amendment needs a reason (the protocol amendment it implements)", field="reason"
        )
    return [
        StudyVersionPublished(
            study_id=study_id,
            version_hash=version.hash,
            protocol_version=version.definition.study.protocol_version,
            definition=orjson.loads(version.canonical_json),
            source_format=command.source_format,
            source_name=command.source_name,
        )
    ]
