"""Commands of the protocol context."""

from __future__ import annotations

from dataclasses import dataclass

from trialstack.protocol.version import StudyVersion


@dataclass(frozen=True)
class PublishStudyVersion:
    """Put a StudyVersion in force (a first version, or an amendment)."""

    version: StudyVersion
    source_format: str
    source_name: str | None = None
    reason: str | None = None
