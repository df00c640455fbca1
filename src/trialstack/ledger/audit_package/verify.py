"""Check an audit package with nothing but the file: container, signature, manifest, and the whole hash chain.

Every byte is accounted for: headers must equal the canonical layout, the small entries are bound by the signed
checkpoint (the manifest by its SHA-256, the checkpoint by the signature, the key by the signature and key id),
and the events entry by the manifest's digests of its stored and inflated bytes and by the recomputed chain.
The first problem found is reported as PackageInvalid with a reason a person can act on.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from trialstack.ledger.audit_package.container import STORED, Entry, canonical, layout
from trialstack.ledger.audit_package.export import (
    CHECKPOINT,
    ENTRY_NAMES,
    EVENTS,
    MANIFEST,
    PACKAGE_FORMAT,
    PUBLIC_KEY,
    SIGNATURE,
)
from trialstack.ledger.canonical import canonical_payload
from trialstack.ledger.chain import GENESIS_HASH, chain_hash, envelope_bytes
from trialstack.ledger.checkpoint import Checkpoint, CheckpointInvalid, verify_checkpoint
from trialstack.ledger.errors import LedgerError

ENVELOPE = (
    "study_id", "study_seq", "stream_type", "stream_id", "stream_version", "event_type", "schema_version", "actor_id",
    "actor_role", "on_behalf_of", "reason", "occurred_at", "recorded_at", "source", "external_id", "correlation_id",
    "causation_id", "prev_hash",
)  # fmt: skip
LINE_KEYS = frozenset({*ENVELOPE, "payload", "hash"})
_SMALL = 1 << 20
_CHUNK = 1 << 20
_MAX_LINE = 64 << 20
Progress = Callable[[int], None]


# What zipfile raises on a damaged central directory (a flipped version field is a NotImplementedError).
_UNREADABLE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
    EOFError,
    struct.error,
    KeyError,
    IndexError,
    UnicodeDecodeError,
)


class PackageInvalid(LedgerError):
    code = "audit-package-invalid"


@dataclass(frozen=True)
class PackageReport:
    study_id: str
    events: int
    head_seq: int
    head_hash: str
    key_id: str
    signed_at: str
    exported_by: str


def _entries(file: BinaryIO) -> list[Entry]:
    try:
        infos = zipfile.ZipFile(file).infolist()
    except _UNREADABLE as error:
        raise PackageInvalid(f"not a readable ZIP archive ({error})") from None
    names = tuple(info.filename for info in infos)
    if names != ENTRY_NAMES:
        raise PackageInvalid(f"expected the entries {', '.join(ENTRY_NAMES)}, found {', '.join(names) or 'none'}")
    return canonical(
        [Entry(i.filename, i.compress_type, i.CRC, i.compress_size, i.file_size, i.header_offset) for i in infos]
    )


def _check_layout(file: BinaryIO, entries: list[Entry], size: int) -> None:
    for offset, expected in layout(entries):
        file.seek(offset)
        actual = file.read(len(expected))
        if actual != expected:
            at = next((i for i, (a, b) in enumerate(zip(actual, expected, strict=False)) if a != b), len(actual))
            raise PackageInvalid(f"ZIP structure: byte {offset + at} differs from the canonical package layout")
        end = offset + len(expected)
    if size != end:
        raise PackageInvalid(f"ZIP structure: the file has {size - end} bytes after the end of the archive")


def _stored(file: BinaryIO, entry: Entry) -> bytes:
    if entry.method != STORED or entry.size > _SMALL:
        raise PackageInvalid(f"{entry.name}: expected a small uncompressed entry")
    file.seek(entry.data_offset)
    data = file.read(entry.compressed_size)
    if zlib.crc32(data) != entry.crc:
        raise PackageInvalid(f"{entry.name}: CRC-32 does not match its content")
    return data


def _inflate(file: BinaryIO, entry: Entry, stored: Any, inflated: Any) -> Iterator[bytes]:
    """The events entry inflated chunk by chunk (bounded memory), hashing both forms on the way."""
    file.seek(entry.data_offset)
    remaining = entry.compressed_size
    decompressor = zlib.decompressobj(-15)
    try:
        while remaining:
            chunk = file.read(min(_CHUNK, remaining))
            if not chunk:
                raise PackageInvalid(f"{entry.name}: the archive ends inside the entry")
            remaining -= len(chunk)
            stored.update(chunk)
            data = decompressor.decompress(chunk, _CHUNK)
            while data:
                inflated.update(data)
                yield data
                data = decompressor.decompress(decompressor.unconsumed_tail, _CHUNK)
        tail = decompressor.flush()
        inflated.update(tail)
        yield tail
    except zlib.error as error:
        raise PackageInvalid(f"{entry.name}: the compressed data is corrupt ({error})") from None
    if not decompressor.eof or decompressor.unused_data:
        raise PackageInvalid(f"{entry.name}: the compressed data does not end where the entry ends")


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if len(pending) > _MAX_LINE:
            raise PackageInvalid(f"{EVENTS}: a line longer than {_MAX_LINE} bytes")
        yield from complete
    if pending:
        raise PackageInvalid(f"{EVENTS}: the last line has no line end")


def _check_event(line: bytes, number: int, study_id: str, prev: str) -> str:
    where = f"{EVENTS} line {number}"
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise PackageInvalid(f"{where} is not JSON") from None
    if not isinstance(record, dict) or set(record) != LINE_KEYS or not isinstance(record["payload"], dict):
        raise PackageInvalid(f"{where} does not have the fields of a ledger event")
    if record["study_id"] != study_id or record["study_seq"] != number:
        raise PackageInvalid(f"{where}: expected study {study_id} study_seq {number}")
    if record["prev_hash"] != prev:
        raise PackageInvalid(f"{where} (study_seq {number}): prev_hash is not the hash of the event before it")
    try:
        payload_json = canonical_payload(record["payload"])
        digest = chain_hash(prev, envelope_bytes(payload_json=payload_json, **{k: record[k] for k in ENVELOPE}))
    except (LedgerError, TypeError, AttributeError):
        raise PackageInvalid(f"{where} (study_seq {number}): the event cannot be canonicalized") from None
    if digest != record["hash"]:
        raise PackageInvalid(f"{where} (study_seq {number}): hash does not match the event's content")
    return digest


def _manifest(data: bytes, checkpoint: Checkpoint) -> dict[str, Any]:
    if hashlib.sha256(data).hexdigest() != checkpoint.manifest_sha256:
        raise PackageInvalid(f"{MANIFEST} was altered: its SHA-256 is not the one in the signed checkpoint")
    manifest: dict[str, Any] = orjson.loads(data)
    if manifest.get("format") != PACKAGE_FORMAT or manifest.get("format_version") != 1:
        raise PackageInvalid(f"{MANIFEST}: not a {PACKAGE_FORMAT} version 1")
    if manifest.get("study_id") != checkpoint.study_id:
        raise PackageInvalid(
            f"{MANIFEST} is for study {manifest.get('study_id')}, the checkpoint for {checkpoint.study_id}"
        )
    return manifest


def verify_audit_package(
    path: Path, expected_key_id: str | None = None, progress: Progress | None = None
) -> PackageReport:
    """Verify the package at `path` offline; `expected_key_id` pins the site key the auditor was given."""
    with path.open("rb") as file:
        size = path.stat().st_size
        entries = _entries(file)
        _check_layout(file, entries, size)
        by_name = {entry.name: entry for entry in entries}
        small = {name: _stored(file, by_name[name]) for name in (MANIFEST, CHECKPOINT, SIGNATURE, PUBLIC_KEY)}
        try:
            checkpoint = verify_checkpoint(small[PUBLIC_KEY], small[CHECKPOINT], small[SIGNATURE].decode("ascii"))
        except (CheckpointInvalid, UnicodeDecodeError) as error:
            raise PackageInvalid(f"{CHECKPOINT}: {getattr(error, 'message', error)}") from None
        if expected_key_id is not None and checkpoint.key_id != expected_key_id.lower():
            raise PackageInvalid(f"signed by key {checkpoint.key_id}, not by the expected key {expected_key_id}")
        manifest = _manifest(small[MANIFEST], checkpoint)
        declared = manifest["events"]
        stored, inflated = hashlib.sha256(), hashlib.sha256()
        events = by_name[EVENTS]
        prev, count = GENESIS_HASH, 0
        for line in _lines(_inflate(file, events, stored, inflated)):
            count += 1
            prev = _check_event(line, count, checkpoint.study_id, prev)
            if progress is not None and count % 10_000 == 0:
                progress(10_000)
    if progress is not None:
        progress(count % 10_000)
    if stored.hexdigest() != declared["stored_sha256"] or inflated.hexdigest() != declared["sha256"]:
        raise PackageInvalid(f"{EVENTS}: its bytes differ from the digests in {MANIFEST}")
    if (count, prev) != (checkpoint.study_seq, checkpoint.hash) or count != declared["count"]:
        raise PackageInvalid(
            f"{EVENTS} ends at study_seq {count} ({prev[:12]}), the signed checkpoint at {checkpoint.study_seq} "
            f"({checkpoint.hash[:12]})"
        )
    return PackageReport(
        checkpoint.study_id, count, checkpoint.study_seq, checkpoint.hash, checkpoint.key_id, checkpoint.signed_at,
        str(manifest.get("exported_by")),
    )  # fmt: skip
