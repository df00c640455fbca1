"""A subject's stream folded into its export record: order from the definition, repeats, queries placed right."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from trialstack.capture.clinical_casebook import subject_record
from trialstack.ledger.envelope import RecordedEvent
from trialstack.protocol.definition import StudyDefinition
from trialstack.standards.clinical import QueryMessage, QueryRecord
from trialstack.standards.loader import load_study_file

DEMO = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"
AT = "2026-01-05T09:00:00.000000Z"


@pytest.fixture(scope="module")
def demo() -> StudyDefinition:
    return load_study_file(DEMO)


def _event(seq: int, kind: str, reason: str | None = None, **payload: Any) -> RecordedEvent:
    body = json.dumps({"subject_id": "0101-001", "study_version": "h", **payload})
    return RecordedEvent(
        seq, "HTN-201", seq, "subject", "HTN-201/0101-001", seq, kind, 1, body, "user:cora", "study_coordinator",
        None, reason, AT, AT, None, None, None, None, "0" * 64, "0" * 64,
    )  # fmt: skip


def _entered(seq: int, form: str, item: str, value: str) -> RecordedEvent:
    return _event(seq, "ItemValueEntered", form=form, item=item, value=value)


def _query(query_id: str) -> QueryRecord:
    message = QueryMessage("system:rules", datetime(2026, 1, 5, tzinfo=UTC), "outside its window", from_site=False)
    return QueryRecord(query_id, "open", (message,))


def test_visits_forms_and_items_follow_the_definition_and_repeats_are_numbered(demo: StudyDefinition) -> None:
    events = [
        _event(1, "VisitDateRecorded", visit="UNSCHED.2", visit_date="2026-02-01"),
        _event(2, "VisitDateRecorded", visit="SCREENING", visit_date="2026-01-05"),
        _entered(3, "SCREENING.VS", "PULSE", "72"),
        _entered(4, "SCREENING.VS", "SYSBP", "150"),
        _entered(5, "SCREENING.IC", "ICDAT", "2026-01-05"),
        _entered(6, "AE.2", "AETERM", "Nausea"),
        _entered(7, "AE.1", "AETERM", "Headache"),
    ]
    queries = {("UNSCHED.2", "VISIT_DATE"): [_query("Q-1")], ("SCREENING.VS", "WEIGHT"): [_query("Q-2")]}
    record = subject_record(demo, "0101-001", "0101", events, queries)
    assert [(visit.visit_id, visit.repeat, visit.date) for visit in record.visits] == [
        ("SCREENING", None, "2026-01-05"),
        ("UNSCHED", 2, "2026-02-01"),
    ]
    screening, unscheduled = record.visits
    assert [form.form_id for form in screening.forms] == ["IC", "VS"]
    vitals = screening.forms[1]
    assert [(item.item_id, item.value) for item in vitals.items] == [
        ("SYSBP", "150"),
        ("PULSE", "72"),
        ("WEIGHT", None),
    ]
    assert [query.id for query in vitals.items[2].queries] == ["Q-2"]  # raised on an item never entered
    assert [query.id for query in unscheduled.date_queries] == ["Q-1"]  # UNSCHED.2 is a visit here, not a log record
    assert [(form.form_id, form.repeat, form.items[0].value) for form in record.log_forms] == [
        ("AE", 1, "Headache"),
        ("AE", 2, "Nausea"),
    ]


def test_not_done_and_cleared_values_keep_their_history(demo: StudyDefinition) -> None:
    events = [
        _event(1, "VisitDateRecorded", visit="SCREENING", visit_date="2026-01-05"),
        _entered(2, "SCREENING.VS", "PULSE", "72"),
        _event(3, "ItemMarkedNotDone", "device", form="SCREENING.VS", item="PULSE", not_done_reason="broken",
               previous_value="72"),
        _event(4, "ItemValueChanged", "found it", form="SCREENING.VS", item="PULSE", value="70", previous_value=None),
    ]  # fmt: skip
    item = subject_record(demo, "0101-001", "0101", events).visits[0].forms[0].items[0]
    assert [(e.old_value, e.new_value, e.reason) for e in item.audit] == [
        (None, "72", None),
        ("72", None, "not done: broken; device"),
        (None, "70", "found it"),
    ]
    assert item.value == "70" and item.audit[0].at == datetime(2026, 1, 5, 9, tzinfo=UTC)
