"""StudyVersion: a definition made immutable and content-addressed (DESIGN.md §3).

The hash covers the RFC 8785 (JCS) canonical JSON of the definition, so key order, comments and
formatting of the source do not change it. Fields left at their default are omitted before hashing:
a later release that adds an optional section (questionnaires, labs) leaves existing hashes intact,
and writing `required: false` hashes like leaving it out. Decimals are strings ("3.5"), as in ODM.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import rfc8785

from trialstack.protocol.definition import StudyDefinition


def canonical_json(definition: StudyDefinition) -> bytes:
    """The JCS bytes of the definition: what the hash, the ledger and `show --format json` carry."""
    data: Any = definition.model_dump(mode="json", exclude_defaults=True)
    return bytes(rfc8785.dumps(data))


@dataclass(frozen=True)
class StudyVersion:
    """A published definition, its canonical JSON and the SHA-256 hex digest of that JSON."""

    definition: StudyDefinition
    canonical_json: bytes
    hash: str

    @property
    def short_hash(self) -> str:
        return self.hash[:12]


def study_version(definition: StudyDefinition) -> StudyVersion:
    """Canonicalize and hash a definition."""
    canonical = canonical_json(definition)
    return StudyVersion(definition, canonical, hashlib.sha256(canonical).hexdigest())


def definition_from_canonical_json(canonical: bytes) -> StudyDefinition:
    """Rebuild the definition from its canonical JSON (as stored with a StudyVersionPublished event)."""
    return StudyDefinition.model_validate_json(canonical)
