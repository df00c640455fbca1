"""Appending to the ledger and reading it back, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from trialstack.bootstrap import Platform
from trialstack.ledger import Actor, ConcurrencyConflict, NewEvent, NonCanonicalPayload, store
from trialstack.ledger.chain import GENESIS_HASH, chain_hash, envelope_bytes
from trialstack.ledger.errors import LedgerError
from trialstack.ledger.outbox import acknowledge, pending
from trialstack.ledger.readmodel import list_streams
from trialstack.ledger.schema import ledger_event
from trialstack.ledger.verify import verify

COORDINATOR = Actor(id="user:alice", role="study_coordinator")


def entered(item: str, value: Any, **kwargs: Any) -> NewEvent:
    return NewEvent(event_type="ValueNoted", payload={"item": item, "value": value}, **kwargs)


def append(platform: Platform, stream: str, events: list[NewEvent], expected: int | None, study: str = "S1") -> None:
    with platform.unit_of_work(COORDINATOR) as uow:
        uow.append(study, "subject", stream, events, expected_version=expected)
        uow.commit()


def test_appends_number_each_study_contiguously_and_chain_the_hashes(platform: Platform) -> None:
    append(platform, "S1/0101-001", [entered("SBP", "120"), entered("DBP", "80")], expected=0)
    append(platform, "S1/0101-002", [entered("SBP", "130")], expected=0)
    append(platform, "S2/0201-001", [entered("SBP", "140")], expected=0, study="S2")
    with platform.engine.connect() as connection:
        s1 = list(store.iter_study(connection, "S1"))
        s2 = store.read_study(connection, "S2")
        report = verify(connection)
    assert [e.study_seq for e in s1] == [1, 2, 3]
    assert [e.stream_version for e in s1] == [1, 2, 1]
    assert [e.study_seq for e in s2] == [1]
    assert s1[0].prev_hash == GENESIS_HASH and s1[1].prev_hash == s1[0].hash and s1[2].prev_hash == s1[1].hash
    assert s2[0].prev_hash == GENESIS_HASH
    assert report.ok and report.events == 4 and report.studies == 2
    first = s1[0]
    assert first.payload == {"item": "SBP", "value": "120"}
    assert first.actor_id == "user:alice" and first.actor_role == "study_coordinator"
    assert first.recorded_at == "2026-01-05T09:00:00.000000Z"


def test_the_stored_hash_is_sha256_of_prev_hash_and_the_canonical_envelope(platform: Platform) -> None:
    append(platform, "S1/0101-001", [entered("SBP", "120", reason=None)], expected=0)
    with platform.engine.connect() as connection:
        (event,) = store.read_stream(connection, "subject", "S1/0101-001")
    envelope = envelope_bytes(
        **{
            name: getattr(event, name)
            for name in [
                "study_id",
                "study_seq",
                "stream_type",
                "stream_id",
                "stream_version",
                "event_type",
                "schema_version",
                "payload_json",
                "actor_id",
                "actor_role",
                "on_behalf_of",
                "reason",
                "occurred_at",
                "recorded_at",
                "source",
                "external_id",
                "correlation_id",
                "causation_id",
                "prev_hash",
            ]
        }
    )
    assert envelope.startswith(b'{"actor_id":"user:alice","actor_role":"study_coordinator","causation_id":null')
    assert b'"payload":{"item":"SBP","value":"120"}' in envelope
    assert event.hash == chain_hash(GENESIS_HASH, envelope)


def test_a_wrong_expected_version_is_a_conflict_and_writes_nothing(platform: Platform) -> None:
    append(platform, "S1/0101-001", [entered("SBP", "120")], expected=0)
    with pytest.raises(ConcurrencyConflict) as caught:
        append(platform, "S1/0101-001", [entered("SBP", "125")], expected=0)
    assert caught.value.expected == 0 and caught.value.actual == 1
    with platform.engine.connect() as connection:
        assert store.count_events(connection) == 1


def test_a_repeated_inbound_message_is_a_no_op(platform: Platform) -> None:
    lab = NewEvent(
        event_type="InboundValueReceived", payload={"test": "K", "value": "4.1"}, source="lab", external_id="M1"
    )
    append(platform, "S1/lab", [lab], expected=None)
    append(platform, "S1/lab", [lab], expected=None)
    with platform.unit_of_work(COORDINATOR) as uow:
        (returned,) = uow.append("S1", "subject", "S1/lab", [lab], expected_version=None)
        uow.commit()
    assert returned.study_seq == 1
    with platform.engine.connect() as connection:
        assert store.count_events(connection) == 1


def test_a_non_canonical_payload_is_refused_and_nothing_is_written(platform: Platform) -> None:
    with pytest.raises(NonCanonicalPayload):
        append(platform, "S1/0101-001", [entered("SBP", "120"), entered("WEIGHT", float("nan"))], expected=0)
    with platform.engine.connect() as connection:
        assert store.count_events(connection) == 0
        assert pending(connection, "nats") == []


def test_an_exception_after_append_leaves_no_event_projection_or_outbox_row(platform: Platform) -> None:
    with pytest.raises(RuntimeError), platform.unit_of_work(COORDINATOR) as uow:
        uow.append("S1", "subject", "S1/0101-001", [entered("SBP", "120")], expected_version=0)
        raise RuntimeError("handler failed after the append")
    with platform.engine.connect() as connection:
        assert store.count_events(connection) == 0
        assert list_streams(connection, "S1") == []
        assert pending(connection, "nats") == []
        assert store.study_ids(connection) == []


def test_commit_updates_projections_and_the_relay_sees_each_event_once(platform: Platform) -> None:
    append(platform, "S1/0101-001", [entered("SBP", "120"), entered("DBP", "80")], expected=0)
    append(platform, "S.2/0201-001", [entered("SBP", "140")], expected=0, study="S.2")
    with platform.engine.begin() as connection:
        (stream,) = list_streams(connection, "S1")
        first = pending(connection, "nats")
        for message in first:
            acknowledge(connection, "nats", message.event.study_id, message.event.study_seq)
    append(platform, "S1/0101-001", [entered("PULSE", "70")], expected=2)
    with platform.engine.connect() as connection:
        second = pending(connection, "nats")
        other_subscriber = pending(connection, "webhooks")
    assert stream["version"] == 2 and stream["last_event_type"] == "ValueNoted"
    assert [m.subject for m in first] == ["trialstack.S1.unknown.ValueNoted"] * 2 + [
        "trialstack.S_2.unknown.ValueNoted"
    ]
    assert [(m.event.study_id, m.event.study_seq) for m in second] == [("S1", 3)]
    assert len(other_subscriber) == 4


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger_event SET reason = 'tampered'", "DELETE FROM ledger_event"],
)
def test_the_database_itself_refuses_update_and_delete(platform: Platform, statement: str) -> None:
    append(platform, "S1/0101-001", [entered("SBP", "120")], expected=0)
    with pytest.raises(Exception, match="append-only") as caught, platform.engine.begin() as connection:
        connection.execute(text(statement))
    assert "append-only" in str(caught.value)
    with platform.engine.connect() as connection:
        assert connection.execute(select(ledger_event.c.reason)).scalar_one() is None


def test_appends_inserted_together_chain_like_single_appends_and_take_no_expected_version(platform: Platform) -> None:
    values = [NewEvent("InboundValueReceived", {"n": n}, source="lab", external_id=f"R{n}") for n in range(6)]
    with platform.unit_of_work(COORDINATOR) as uow:
        with uow.inserted_together():
            for n in range(3):
                uow.append("S1", "subject", f"S1/{n}", values[2 * n : 2 * n + 2], expected_version=None)
            with pytest.raises(LedgerError):
                uow.append("S1", "subject", "S1/9", [NewEvent("Noted", {})], expected_version=0)
        uow.commit()
    with platform.engine.connect() as connection:
        events = store.read_study(connection, "S1")
        assert [e.stream_id for e in events] == ["S1/0", "S1/0", "S1/1", "S1/1", "S1/2", "S1/2"]
        assert [e.stream_version for e in events] == [1, 2, 1, 2, 1, 2]
        assert verify(connection).ok
