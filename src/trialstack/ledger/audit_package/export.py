"""Write a study's audit package: its events as NDJSON (streamed: memory stays flat whatever the study's size), a
manifest, the signed checkpoint of the chain head, and the public key to check it with.

The chain is recomputed while exporting, so a package is never made from a ledger that no longer verifies.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection

import trialstack
from trialstack.errors import NotFound
from trialstack.ledger import store
from trialstack.ledger.audit_package.container import PackageWriter
from trialstack.ledger.chain import GENESIS_HASH, chain_hash, envelope_bytes
from trialstack.ledger.checkpoint import Checkpoint, SiteKey, sign_checkpoint
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.errors import LedgerError

PACKAGE_FORMAT = "trialstack-audit-package"
PACKAGE_VERSION = 1
EVENTS, MANIFEST, CHECKPOINT, SIGNATURE, PUBLIC_KEY = (
    "events.ndjson",
    "manifest.json",
    "checkpoint.json",
    "checkpoint.sig",
    "public_key.pem",
)
ENTRY_NAMES = (EVENTS, MANIFEST, CHECKPOINT, SIGNATURE, PUBLIC_KEY)
SCOPE = (
    "every event of the study's ledger chain, allocations included: an export for administrators and auditors; "
    "blinded roles must not receive it"
)
_BUFFER = 1 << 20
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportSummary:
    study_id: str
    events: int
    head_seq: int
    head_hash: str
    key_id: str
    path: Path
    size: int


def event_line(event: RecordedEvent, expected_seq: int, prev: str) -> bytes:
    """One NDJSON line: every ledger column but the row id, keys sorted, the stored payload text spliced in.

    The event's chain link is recomputed on the way (LedgerError when it does not hold).
    """
    fields = event._asdict()
    del fields["id"]
    digest = fields.pop("hash")
    if (
        event.study_seq != expected_seq
        or event.prev_hash != prev
        or chain_hash(prev, envelope_bytes(**fields)) != digest
    ):
        raise LedgerError(
            f"the chain of study {event.study_id} is broken at study_seq {expected_seq}; run `trialstack verify` "
            "before exporting"
        )
    fields["hash"] = digest
    fields["payload"] = orjson.Fragment(fields.pop("payload_json"))
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS) + b"\n"


def export_audit_package(
    connection: Connection,
    study_id: str,
    out: Path,
    key: SiteKey,
    *,
    exported_by: str,
    exported_at: str,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the package to `out` (through a temporary file renamed into place: no partial package is left)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "w+b") as file:
            summary = _write(connection, study_id, file, key, exported_by, exported_at, progress)
        os.replace(temporary, out)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return ExportSummary(study_id, summary[0], summary[0], summary[1], key.key_id, out, out.stat().st_size)


def _write(
    connection: Connection,
    study_id: str,
    file: Any,
    key: SiteKey,
    exported_by: str,
    exported_at: str,
    progress: Progress | None,
) -> tuple[int, str]:
    writer = PackageWriter(file)
    stream = writer.begin_streamed(EVENTS)
    seq, head = 0, GENESIS_HASH
    buffer = bytearray()
    for event in store.iter_study(connection, study_id):
        buffer += event_line(event, seq + 1, head)
        seq, head = seq + 1, event.hash
        if len(buffer) >= _BUFFER:
            stream.write(bytes(buffer))
            buffer.clear()
        if progress is not None and seq % 10_000 == 0:
            progress(10_000)
    if seq == 0:
        raise NotFound(f"study {study_id} has no events in this ledger", field="study")
    stream.write(bytes(buffer))
    entry = writer.end_streamed(EVENTS, stream)
    if progress is not None:
        progress(seq % 10_000)
    manifest = {
        "format": PACKAGE_FORMAT,
        "format_version": PACKAGE_VERSION,
        "study_id": study_id,
        "exported_at": exported_at,
        "exported_by": exported_by,
        "trialstack_version": trialstack.__version__,
        "scope": SCOPE,
        "chain": {"genesis": GENESIS_HASH, "rule": "hash = SHA-256(prev_hash || JCS(envelope without hash))"},
        "events": {
            "file": EVENTS,
            "count": seq,
            "first_seq": 1,
            "last_seq": seq,
            "head_hash": head,
            "size": entry.size,
            "sha256": stream.sha256.hexdigest(),
            "stored_size": entry.compressed_size,
            "stored_sha256": stream.stored_sha256.hexdigest(),
        },
        "public_key": {"file": PUBLIC_KEY, "key_id": key.key_id, "algorithm": "Ed25519"},
        "checkpoint": {"file": CHECKPOINT, "signature": SIGNATURE},
    }
    manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    writer.add_stored(MANIFEST, manifest_bytes)
    checkpoint = Checkpoint(study_id, seq, head, exported_at, key.key_id, hashlib.sha256(manifest_bytes).hexdigest())
    writer.add_stored(CHECKPOINT, checkpoint.to_bytes())
    writer.add_stored(SIGNATURE, (sign_checkpoint(key, checkpoint) + "\n").encode("ascii"))
    writer.add_stored(PUBLIC_KEY, key.public_pem())
    writer.close()
    return seq, head
