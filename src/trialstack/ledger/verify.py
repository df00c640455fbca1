"""Recompute every hash chain from what is stored and report the first broken link (DESIGN.md §2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from trialstack.ledger.chain import GENESIS_HASH, chain_hash, envelope_bytes
from trialstack.ledger.schema import ledger_event, study_head
from trialstack.ledger.store import to_event

Progress = Callable[[int], None]


@dataclass(frozen=True)
class BrokenLink:
    study_id: str
    study_seq: int
    reason: str


@dataclass
class VerifyReport:
    studies: int = 0
    events: int = 0
    broken: list[BrokenLink] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken


def verify_study(connection: Connection, study_id: str, progress: Progress | None = None) -> tuple[int, BrokenLink | None]:
    """Walk one study's chain in `study_seq` order; return (events checked, first broken link or None)."""
    expected_seq = 1
    prev = GENESIS_HASH
    rows = connection.execution_options(stream_results=True, yield_per=10_000).execute(
        select(*ledger_event.c).where(ledger_event.c.study_id == study_id).order_by(ledger_event.c.study_seq)
    )
    checked = 0
    for row in rows:
        event = to_event(row)
        if event.study_seq != expected_seq:
            return checked, BrokenLink(study_id, expected_seq, f"study_seq {expected_seq} is missing (next is {event.study_seq})")
        if event.prev_hash != prev:
            return checked, BrokenLink(study_id, event.study_seq, "prev_hash does not match the hash of the event before it")
        recomputed = chain_hash(
            prev,
            envelope_bytes(
                study_id=event.study_id,
                study_seq=event.study_seq,
                stream_type=event.stream_type,
                stream_id=event.stream_id,
                stream_version=event.stream_version,
                event_type=event.event_type,
                schema_version=event.schema_version,
                payload_json=event.payload_json,
                actor_id=event.actor_id,
                actor_role=event.actor_role,
                on_behalf_of=event.on_behalf_of,
                reason=event.reason,
                occurred_at=event.occurred_at,
                recorded_at=event.recorded_at,
                source=event.source,
                external_id=event.external_id,
                correlation_id=event.correlation_id,
                causation_id=event.causation_id,
                prev_hash=event.prev_hash,
            ),
        )
        if recomputed != event.hash:
            return checked, BrokenLink(study_id, event.study_seq, "hash does not match the event's content")
        prev = event.hash
        expected_seq += 1
        checked += 1
        if progress is not None and checked % 10_000 == 0:
            progress(10_000)
    if progress is not None:
        progress(checked % 10_000)
    head = connection.execute(
        select(study_head.c.last_seq, study_head.c.last_hash).where(study_head.c.study_id == study_id)
    ).first()
    if head is not None and (int(head[0]), str(head[1])) != (expected_seq - 1, prev):
        return checked, BrokenLink(
            study_id, int(head[0]), f"study head says seq {head[0]} but the chain ends at {expected_seq - 1}"
        )
    return checked, None


def verify(connection: Connection, study_id: str | None = None, progress: Progress | None = None) -> VerifyReport:
    """Verify one study or all of them (every study in the ledger, with or without a head row)."""
    if study_id is not None:
        studies = [study_id]
    else:
        found = {str(r[0]) for r in connection.execute(select(ledger_event.c.study_id).distinct())}
        found |= {str(r[0]) for r in connection.execute(select(study_head.c.study_id))}
        studies = sorted(found)
    report = VerifyReport()
    for sid in studies:
        checked, broken = verify_study(connection, sid, progress)
        report.studies += 1
        report.events += checked
        if broken is not None:
            report.broken.append(broken)
    return report
