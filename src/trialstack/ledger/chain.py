"""The hash chain: hash = SHA-256(prev_hash ‖ JCS(envelope without hash)), chained per study.

The envelope is every column but `id` and `hash`; the stored payload text is spliced in as an orjson Fragment,
so verifying hashes exactly the bytes that are stored, without re-parsing them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

GENESIS_HASH = "0" * 64
_OPTIONS = orjson.OPT_SORT_KEYS


def envelope_bytes(
    *,
    study_id: str,
    study_seq: int,
    stream_type: str,
    stream_id: str,
    stream_version: int,
    event_type: str,
    schema_version: int,
    payload_json: str,
    actor_id: str,
    actor_role: str,
    on_behalf_of: str | None,
    reason: str | None,
    occurred_at: str,
    recorded_at: str,
    source: str | None,
    external_id: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    prev_hash: str,
) -> bytes:
    """The JCS bytes of an envelope (keys are ASCII and fixed, so orjson's sorted output is JCS)."""
    envelope: dict[str, Any] = {
        "actor_id": actor_id,
        "actor_role": actor_role,
        "causation_id": causation_id,
        "correlation_id": correlation_id,
        "event_type": event_type,
        "external_id": external_id,
        "occurred_at": occurred_at,
        "on_behalf_of": on_behalf_of,
        "payload": orjson.Fragment(payload_json),
        "prev_hash": prev_hash,
        "reason": reason,
        "recorded_at": recorded_at,
        "schema_version": schema_version,
        "source": source,
        "stream_id": stream_id,
        "stream_type": stream_type,
        "stream_version": stream_version,
        "study_id": study_id,
        "study_seq": study_seq,
    }
    return orjson.dumps(envelope, option=_OPTIONS)


def chain_hash(prev_hash: str, envelope: bytes) -> str:
    """SHA-256 over the previous hash (hex text) followed by the canonical envelope."""
    return hashlib.sha256(prev_hash.encode("ascii") + envelope).hexdigest()
