"""Use cases of the protocol context: publish a StudyVersion through the unit of work."""

from __future__ import annotations

from dataclasses import dataclass

from trialstack.ledger.registry import decode, encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.events import StudyVersionPublished
from trialstack.protocol.model import ProtocolHistory, decide_publish, evolve

STREAM_TYPE = "protocol"


@dataclass(frozen=True)
class PublishOutcome:
    version_hash: str
    published: bool
    study_seq: int | None


def load_history(uow: UnitOfWork, study_id: str) -> tuple[ProtocolHistory, int]:
    state = ProtocolHistory(study_id)
    events = uow.read_stream(STREAM_TYPE, study_id)
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, StudyVersionPublished):
            state = evolve(state, payload)
    return state, len(events)


def publish_study_version(uow: UnitOfWork, command: PublishStudyVersion) -> PublishOutcome:
    """Append StudyVersionPublished unless that content is already in force; the caller commits."""
    study_id = command.version.definition.study.id
    state, version = load_history(uow, study_id)
    decided = decide_publish(state, command)
    recorded = uow.append(
        study_id,
        STREAM_TYPE,
        study_id,
        [encode(event, reason=command.reason) for event in decided],
        expected_version=version,
    )
    return PublishOutcome(command.version.hash, bool(recorded), recorded[0].study_seq if recorded else None)
