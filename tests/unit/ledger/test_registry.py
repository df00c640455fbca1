"""Event payloads are versioned models: an old stored payload is upcast when read, never rewritten."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.errors import LedgerError
from trialstack.ledger.registry import context_of, decode, encode, event_type, is_blinded, upcaster


@event_type("tests", schema_version=3)
class VitalSignRecordedForTest(BaseModel):
    """v1 had `value` in mmHg as an integer; v2 renamed it `systolic`; v3 added `position`."""

    systolic: str
    position: str


@upcaster("VitalSignRecordedForTest", 1)
def _v1_to_v2(payload: dict[str, object]) -> dict[str, object]:
    return {"systolic": str(payload["value"])}


@upcaster("VitalSignRecordedForTest", 2)
def _v2_to_v3(payload: dict[str, object]) -> dict[str, object]:
    return {**payload, "position": "unknown"}


@event_type("tests", blinded=True)
class KitDispensedForTest(BaseModel):
    kit: str


def stored(schema_version: int, payload_json: str, event: str = "VitalSignRecordedForTest") -> RecordedEvent:
    return RecordedEvent(
        1, "S", 1, "subject", "S/1", 1, event, schema_version, payload_json, "user:a", "role", None, None,
        "2026-01-05T09:00:00.000000Z", "2026-01-05T09:00:00.000000Z", None, None, None, None, "0" * 64, "f" * 64,
    )  # fmt: skip


def test_an_old_payload_is_upcast_step_by_step_to_the_current_model() -> None:
    assert decode(stored(1, '{"value":142}')) == VitalSignRecordedForTest(systolic="142", position="unknown")
    assert decode(stored(2, '{"systolic":"150"}')) == VitalSignRecordedForTest(systolic="150", position="unknown")
    current = decode(stored(3, '{"position":"seated","systolic":"151"}'))
    assert current == VitalSignRecordedForTest(systolic="151", position="seated")


def test_encode_writes_the_current_schema_version_in_json_mode() -> None:
    new = encode(VitalSignRecordedForTest(systolic="140", position="seated"), reason="re-measured")
    assert (new.event_type, new.schema_version, new.reason) == ("VitalSignRecordedForTest", 3, "re-measured")
    assert new.payload == {"systolic": "140", "position": "seated"}
    assert context_of("VitalSignRecordedForTest") == "tests"


def test_unknown_or_treatment_revealing_events_count_as_blinded() -> None:
    assert is_blinded("KitDispensedForTest")
    assert is_blinded("NoSuchEventType")
    assert not is_blinded("VitalSignRecordedForTest")
    with pytest.raises(LedgerError, match="unknown event type"):
        decode(stored(1, "{}", event="NoSuchEventType"))
