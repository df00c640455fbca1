"""Verifying in chunks across processes reports exactly what one sequential walk of the chain reports.

An intruder with database rights (triggers switched off) edits, deletes, relinks or forges rows at chunk
boundaries and inside chunks; the report of the process pool, of the in-process walk and of a plain reference
walk written here from the definition (DESIGN.md §2) must agree on the events checked and the first break.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, text

from trialstack.bootstrap import Platform
from trialstack.ledger import Actor, NewEvent, store
from trialstack.ledger import verify as verify_module
from trialstack.ledger.chain import GENESIS_HASH, chain_hash, envelope_bytes
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.errors import LedgerError
from trialstack.ledger.verify import verify

ACTOR = Actor(id="user:bob", role="data_manager")
S1_EVENTS = 40
ENVELOPE_FIELDS = [f for f in RecordedEvent._fields if f not in ("id", "hash")]
Outcome = tuple[int, int, list[tuple[str, int, str]]]


def seed(platform: Platform) -> None:
    """S1: 40 events over 8 subjects (some with a reason); S2: 15 events over 3 subjects."""
    for study, subjects in (("S1", 8), ("S2", 3)):
        for n in range(subjects):
            events = [
                NewEvent("ValueNoted", {"item": f"I{i}", "value": str(i * n)}, reason="typo" if i == 3 else None)
                for i in range(5)
            ]
            with platform.unit_of_work(ACTOR) as uow:
                uow.append(study, "subject", f"{study}/{n:03d}", events, expected_version=0)
                uow.commit()


def envelope_of(event: RecordedEvent, **changes: Any) -> bytes:
    return envelope_bytes(**({f: getattr(event, f) for f in ENVELOPE_FIELDS} | changes))


def reference(connection: Connection, study_id: str) -> tuple[int, tuple[str, int, str] | None]:
    """The chain's definition, walked one event at a time with the ledger's own hash functions."""
    expected, prev = 1, GENESIS_HASH
    for event in store.iter_study(connection, study_id):
        if event.study_seq != expected:
            return expected - 1, (study_id, expected, f"study_seq {expected} is missing (next is {event.study_seq})")
        if event.prev_hash != prev:
            return expected - 1, (study_id, expected, "prev_hash does not match the hash of the event before it")
        if chain_hash(prev, envelope_of(event)) != event.hash:
            return expected - 1, (study_id, expected, "hash does not match the event's content")
        prev, expected = event.hash, expected + 1
    head = connection.execute(text("SELECT last_seq, last_hash FROM study_head WHERE study_id = :s"), {"s": study_id})
    row = head.first()
    checked = expected - 1
    if row is not None and (int(row[0]), str(row[1])) != (checked, prev):
        return checked, (study_id, int(row[0]), f"study head says seq {row[0]} but the chain ends at {checked}")
    return checked, None


def as_intruder(platform: Platform, *statements: tuple[str, dict[str, Any]]) -> None:
    """Run raw SQL with the append-only triggers out of the way, as someone with database rights could."""
    with platform.engine.begin() as connection:
        if platform.engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE ledger_event DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS ledger_event_no_update"))
            connection.execute(text("DROP TRIGGER IF EXISTS ledger_event_no_delete"))
        for sql, parameters in statements:
            connection.execute(text(sql), parameters)


def event_at(platform: Platform, study_seq: int, study_id: str = "S1") -> RecordedEvent:
    with platform.engine.connect() as connection:
        (event,) = store.read_study(connection, study_id, study_seq - 1, 1)
    assert event.study_seq == study_seq
    return event


def edit_payload(seq: int) -> Callable[[Platform], None]:
    def tamper(platform: Platform) -> None:
        as_intruder(
            platform,
            (
                "UPDATE ledger_event SET payload = :p WHERE study_id = 'S1' AND study_seq = :s",
                {"p": '{"item":"I0","value":"999"}', "s": seq},
            ),
        )

    return tamper


def delete_rows(first: int, last: int | None = None) -> Callable[[Platform], None]:
    def tamper(platform: Platform) -> None:
        as_intruder(
            platform,
            (
                "DELETE FROM ledger_event WHERE study_id = 'S1' AND study_seq BETWEEN :a AND :b",
                {"a": first, "b": last or first},
            ),
        )

    return tamper


def relink(seq: int) -> Callable[[Platform], None]:
    """Point a row at another predecessor and give it the hash that makes the row itself consistent."""

    def tamper(platform: Platform) -> None:
        event = event_at(platform, seq)
        other = "e" * 64
        forged = chain_hash(other, envelope_of(event, prev_hash=other))
        as_intruder(
            platform,
            (
                "UPDATE ledger_event SET prev_hash = :p, hash = :h WHERE study_id = 'S1' AND study_seq = :s",
                {"p": other, "h": forged, "s": seq},
            ),
        )

    return tamper


def rehash_from(seq: int) -> Callable[[Platform], None]:
    """Edit a row and re-chain every row after it: only the study head still remembers the old chain."""

    def tamper(platform: Platform) -> None:
        statements = []
        prev = event_at(platform, seq).prev_hash
        for position in range(seq, S1_EVENTS + 1):
            event = event_at(platform, position)
            payload = '{"item":"I0","value":"999"}' if position == seq else event.payload_json
            new_hash = chain_hash(prev, envelope_of(event, prev_hash=prev, payload_json=payload))
            statements.append(
                (
                    "UPDATE ledger_event SET payload = :p, prev_hash = :ph, hash = :h"
                    " WHERE study_id = 'S1' AND study_seq = :s",
                    {"p": payload, "ph": prev, "h": new_hash, "s": position},
                )
            )
            prev = new_hash
        as_intruder(platform, *statements)

    return tamper


def forge_at(seq: int) -> Callable[[Platform], None]:
    def tamper(platform: Platform) -> None:
        as_intruder(
            platform,
            (
                "INSERT INTO ledger_event (study_id, study_seq, stream_type, stream_id, stream_version, event_type,"
                " schema_version, payload, actor_id, actor_role, occurred_at, recorded_at, prev_hash, hash)"
                " VALUES ('S1', :s, 'subject', 'S1/999', 1, 'ValueNoted', 1, '{\"item\":\"X\"}', 'user:eve',"
                " 'admin', '2026-01-05T09:00:00.000000Z', '2026-01-05T09:00:00.000000Z', :prev, :hash)",
                {"s": seq, "prev": event_at(platform, S1_EVENTS).hash, "hash": "f" * 64},
            ),
        )

    return tamper


def head_moved(platform: Platform) -> None:
    as_intruder(platform, ("UPDATE study_head SET last_seq = last_seq - 1 WHERE study_id = 'S1'", {}))


TAMPERING: dict[str, Callable[[Platform], None] | None] = {
    "untouched": None,
    "payload edited at the first row": edit_payload(1),
    "payload edited at a chunk's last row": edit_payload(7),
    "payload edited at a chunk's first row": edit_payload(8),
    "payload edited inside a chunk": edit_payload(24),
    "payload edited at the last row": edit_payload(S1_EVENTS),
    "first row deleted": delete_rows(1),
    "row deleted at a chunk boundary": delete_rows(8),
    "a whole chunk deleted": delete_rows(8, 21),
    "last row deleted": delete_rows(S1_EVENTS),
    "row relinked at a chunk's first row": relink(8),
    "row relinked inside a chunk": relink(17),
    "chain rewritten after an edit": rehash_from(20),
    "row forged after the end": forge_at(S1_EVENTS + 1),
    "row forged past a gap": forge_at(S1_EVENTS + 3),
    "study head moved": head_moved,
}


def outcome(connection: Connection, **options: Any) -> Outcome:
    report = verify(connection, **options)
    return report.studies, report.events, [(b.study_id, b.study_seq, b.reason) for b in report.broken]


@pytest.mark.parametrize("case", list(TAMPERING))
def test_the_process_pool_reports_what_a_sequential_walk_reports(
    platform: Platform, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(platform)
    tamper = TAMPERING[case]
    if tamper is not None:
        tamper(platform)
    pooled: list[int] = []
    real_pool = verify_module._verify_in_pool

    def counting_pool(*args: Any, **kwargs: Any) -> Any:
        pooled.append(1)
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(verify_module, "_verify_in_pool", counting_pool)
    with platform.engine.connect() as connection:
        expected_s1 = reference(connection, "S1")
        expected_s2 = reference(connection, "S2")
        sequential = outcome(connection, workers=1)
        in_chunks_of_7 = outcome(connection, workers=2, chunk_rows=7)
        in_chunks_of_1 = outcome(connection, workers=2, chunk_rows=1)
        s1_alone = outcome(connection, workers=2, chunk_rows=3, study_id="S1") if case != "untouched" else None
    assert len(pooled) == (3 if s1_alone else 2)
    broken = [link for _, link in (expected_s1, expected_s2) if link is not None]
    assert sequential == (2, expected_s1[0] + expected_s2[0], broken)
    assert in_chunks_of_7 == sequential
    assert in_chunks_of_1 == sequential
    if s1_alone is not None:
        assert s1_alone == (1, expected_s1[0], broken)
        assert broken and broken[0][0] == "S1"
    else:
        assert broken == [] and sequential[1] == S1_EVENTS + 15


def test_a_small_ledger_is_verified_in_process(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(platform)

    def no_pool(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a ledger smaller than one chunk must not start processes")

    monkeypatch.setattr(verify_module, "_verify_in_pool", no_pool)
    with platform.engine.connect() as connection:
        report = verify(connection, workers=8)
    assert report.ok and report.events == S1_EVENTS + 15


def test_progress_counts_every_checked_event_in_the_pool(platform: Platform) -> None:
    seed(platform)
    seen: list[int] = []
    with platform.engine.connect() as connection:
        report = verify(connection, progress=seen.append, workers=2, chunk_rows=6)
    assert report.ok and sum(seen) == report.events == S1_EVENTS + 15


def test_an_in_memory_sqlite_ledger_is_verified_in_process() -> None:
    from trialstack.bootstrap import bootstrap
    from trialstack.settings import Settings

    platform = bootstrap(Settings(database_url="sqlite://"), migrate=True)
    try:
        seed(platform)
        with platform.engine.connect() as connection:
            report = verify(connection, workers=2, chunk_rows=5)
        assert report.ok and report.events == S1_EVENTS + 15
    finally:
        platform.close()


def test_a_worker_that_cannot_open_the_database_is_one_clear_error(platform: Platform) -> None:
    seed(platform)
    missing = ("sqlite", "file:/nonexistent/ledger.db?mode=ro")
    with platform.engine.connect() as connection:
        bounds = [verify_module.study_bounds(connection, "S1")]
        with pytest.raises(LedgerError, match="a verify worker cannot open the database: unable to open"):
            verify_module._verify_in_pool(connection, bounds, missing, 2, 10, None)
