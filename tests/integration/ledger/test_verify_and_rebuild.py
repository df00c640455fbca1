"""Tampering is found by verify; read models are disposable and come back identical from a replay."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from trialstack.bootstrap import Platform
from trialstack.ledger import Actor, NewEvent, RecordedEvent, store
from trialstack.ledger.projections import projections_checksum, rebuild
from trialstack.ledger.verify import verify
from trialstack.ledger.wiring import ReactionContext

ACTOR = Actor(id="user:bob", role="data_manager")


def seed(platform: Platform, subjects: int = 3, values: int = 4) -> None:
    for n in range(subjects):
        with platform.unit_of_work(ACTOR) as uow:
            events = [NewEvent("ValueNoted", {"item": f"I{i}", "value": str(i * n)}) for i in range(values)]
            uow.append("S1", "subject", f"S1/{n:03d}", events, expected_version=0)
            uow.commit()


def forge_row(platform: Platform, study_seq: int, prev_hash: str) -> None:
    """Insert a row by raw SQL, as an intruder with database access would, with a made-up hash."""
    with platform.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ledger_event (study_id, study_seq, stream_type, stream_id, stream_version, event_type,"
                " schema_version, payload, actor_id, actor_role, occurred_at, recorded_at, prev_hash, hash)"
                " VALUES ('S1', :seq, 'subject', 'S1/999', 1, 'ValueNoted', 1, '{\"item\":\"X\"}',"
                " 'user:eve', 'admin', '2026-01-05T09:00:00.000000Z', '2026-01-05T09:00:00.000000Z', :prev, :hash)"
            ),
            {"seq": study_seq, "prev": prev_hash, "hash": "f" * 64},
        )


def test_a_forged_row_breaks_the_chain_at_its_study_seq(platform: Platform) -> None:
    seed(platform)
    with platform.engine.connect() as connection:
        last = store.read_study(connection, "S1")[-1]
        assert verify(connection).ok
    forge_row(platform, last.study_seq + 1, last.hash)
    with platform.engine.connect() as connection:
        report = verify(connection, "S1")
    assert not report.ok
    (broken,) = report.broken
    assert broken.study_id == "S1" and broken.study_seq == last.study_seq + 1
    assert "hash does not match" in broken.reason


def test_a_gap_in_study_seq_is_reported(platform: Platform) -> None:
    seed(platform, subjects=1, values=2)
    forge_row(platform, 7, "0" * 64)
    with platform.engine.connect() as connection:
        (broken,) = verify(connection).broken
    assert broken.study_seq == 3 and "missing" in broken.reason


def test_rebuild_replays_the_ledger_into_identical_read_models(platform: Platform) -> None:
    seed(platform, subjects=5)
    before = projections_checksum(platform.engine, platform.wiring)
    with platform.engine.begin() as connection:
        connection.execute(text("DELETE FROM rm_stream_index WHERE stream_id = 'S1/001'"))
    damaged = projections_checksum(platform.engine, platform.wiring)
    replayed = rebuild(platform.engine, platform.wiring)
    after = projections_checksum(platform.engine, platform.wiring)
    assert replayed == 20
    assert damaged != before
    assert after == before


def test_reactors_append_in_the_same_transaction_with_the_trigger_as_cause(platform: Platform) -> None:
    def open_query_on_high_sbp(event: RecordedEvent, uow: ReactionContext) -> None:
        if event.payload["item"] == "SBP" and int(event.payload["value"]) > 180:
            uow.append(
                event.study_id,
                "query",
                f"{event.stream_id}/SBP",
                [NewEvent("NoteFlagged", {"item": "SBP", "text": "SBP above 180"})],
                expected_version=0,
                actor=Actor(id="system:rules", role="system"),
            )

    platform.wiring.add_reactor(["ValueNoted"], open_query_on_high_sbp)
    with platform.unit_of_work(ACTOR) as uow:
        uow.append(
            "S1",
            "subject",
            "S1/001",
            [NewEvent("ValueNoted", {"item": "SBP", "value": "190"})],
            expected_version=0,
        )
        produced = uow.commit()
    assert [e.event_type for e in produced] == ["ValueNoted", "NoteFlagged"]
    trigger, query = produced
    assert query.causation_id == trigger.event_ref == "S1#1"
    assert query.correlation_id == trigger.correlation_id
    assert query.actor_id == "system:rules"


def test_a_failing_reactor_rolls_back_the_triggering_append(platform: Platform) -> None:
    def broken_policy(event: RecordedEvent, uow: ReactionContext) -> None:
        raise ValueError("policy failed")

    platform.wiring.add_reactor(["ValueNoted"], broken_policy)
    with pytest.raises(ValueError), platform.unit_of_work(ACTOR) as uow:
        uow.append(
            "S1", "subject", "S1/001", [NewEvent("ValueNoted", {"item": "SBP", "value": "1"})], expected_version=0
        )
        uow.commit()
    with platform.engine.connect() as connection:
        assert store.count_events(connection) == 0
