"""What the relay puts on JetStream for one event, and where: pure, no NATS and no database."""

from __future__ import annotations

import orjson
import pytest

from trialstack.capture import events as capture_events
from trialstack.integration.nats_relay import RelayConfig, RelayConfigError, encode
from trialstack.irt import events as irt_events
from trialstack.ledger.chain import GENESIS_HASH, chain_hash, envelope_bytes
from trialstack.ledger.envelope import RecordedEvent

REGISTERED = (capture_events, irt_events)
"""Imported for their registrations: the relay looks event types up in the registry."""


def recorded(event_type: str, study_id: str = "HTN-201", study_seq: int = 7) -> RecordedEvent:
    fields = {
        "study_id": study_id, "study_seq": study_seq, "stream_type": "subject", "stream_id": f"{study_id}/0101-001",
        "stream_version": 3, "event_type": event_type, "schema_version": 1,
        "payload_json": '{"item":"SBP","value":"120"}', "actor_id": "user:alice", "actor_role": "study_coordinator",
        "on_behalf_of": None, "reason": None, "occurred_at": "2026-01-05T09:00:00.000000Z",
        "recorded_at": "2026-01-05T09:00:00.000000Z", "source": None, "external_id": None,
        "correlation_id": "c-1", "causation_id": None, "prev_hash": GENESIS_HASH,
    }  # fmt: skip
    digest = chain_hash(GENESIS_HASH, envelope_bytes(**fields))  # type: ignore[arg-type]
    return RecordedEvent(id=None, hash=digest, **fields)  # type: ignore[arg-type]


def test_an_event_that_reveals_no_treatment_goes_to_trialstack_on_the_blinded_stream() -> None:
    event = recorded("ItemValueEntered")
    message = encode(event, RelayConfig())
    assert message.subject == "trialstack.HTN-201.capture.ItemValueEntered"
    assert message.stream == "TRIALSTACK"
    assert message.headers == {
        "Nats-Msg-Id": event.hash, "Nats-Expected-Stream": "TRIALSTACK", "Trialstack-Study": "HTN-201",
        "Trialstack-Study-Seq": "7", "Trialstack-Event-Type": "ItemValueEntered",
    }  # fmt: skip


@pytest.mark.parametrize("event_type", ["TreatmentAllocated", "KitsRegistered", "ResupplyTriggered", "NoSuchEvent"])
def test_events_that_reveal_treatment_and_unknown_ones_go_only_under_trialstack_unblinded(event_type: str) -> None:
    message = encode(recorded(event_type), RelayConfig())
    assert message.subject.startswith("trialstack-unblinded.HTN-201.")
    assert message.subject.endswith(f".{event_type}")
    assert message.stream == "TRIALSTACK_UNBLINDED"
    assert not message.subject.startswith("trialstack.")  # `trialstack.>` cannot match it


def test_the_body_is_the_stored_envelope_and_its_hash_so_a_consumer_can_check_the_chain() -> None:
    event = recorded("ItemValueEntered")
    body = orjson.loads(encode(event, RelayConfig()).body)
    digest = body.pop("hash")
    assert digest == event.hash
    assert chain_hash(body["prev_hash"], orjson.dumps(body, option=orjson.OPT_SORT_KEYS)) == digest
    assert body["payload"] == {"item": "SBP", "value": "120"} and body["study_seq"] == 7


def test_a_namespace_prefixes_subjects_streams_and_the_position_and_study_ids_cannot_break_tokens() -> None:
    config = RelayConfig(namespace="staging")
    assert (config.stream_name, config.unblinded_stream_name) == ("staging_TRIALSTACK", "staging_TRIALSTACK_UNBLINDED")
    assert config.subscriber == "nats:staging" and RelayConfig().subscriber == "nats"
    assert [s.subjects for s in config.streams()] == [["staging.trialstack.>"], ["staging.trialstack-unblinded.>"]]
    message = encode(recorded("ItemValueEntered", study_id="A.B*C>"), config)
    assert message.subject == "staging.trialstack.A_B_C_.capture.ItemValueEntered"
    assert encode(recorded("TreatmentAllocated"), config).subject == (
        "staging.trialstack-unblinded.HTN-201.irt.TreatmentAllocated"
    )


def test_the_streams_keep_everything_on_file_and_de_duplicate_over_an_hour() -> None:
    blinded, unblinded = RelayConfig(stream="EVENTS", unblinded_stream="EVENTS_RESTRICTED").streams()
    assert (blinded.name, unblinded.name) == ("EVENTS", "EVENTS_RESTRICTED")
    for stream in (blinded, unblinded):
        assert stream.storage is not None and stream.storage.value == "file"
        assert stream.retention is not None and stream.retention.value == "limits"
        assert stream.duplicate_window == 3600.0 and stream.max_age is None and stream.max_msgs is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"namespace": "a.b"}, "namespace 'a.b' must be"),
        ({"stream": "X", "unblinded_stream": "X"}, "must be two streams"),
        ({"stream": "a b"}, "stream name 'a b'"),
        ({"batch": 0}, "must be positive"),
    ],
)
def test_settings_that_cannot_work_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(RelayConfigError, match=message):
        RelayConfig(**settings)  # type: ignore[arg-type]
