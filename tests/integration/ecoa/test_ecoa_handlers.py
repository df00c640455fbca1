"""eCOA through the handlers on SQLite and PostgreSQL: due entries, windows in the participant's time zone, scores,
alerts, idempotent resends, missed entries and compliance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import REPO_ROOT
from trialstack.bootstrap import Platform
from trialstack.capture import commands as capture_cmd
from trialstack.capture import handlers as capture
from trialstack.capture.refs import VisitKey
from trialstack.clock import FixedClock
from trialstack.consent import commands as consent_cmd
from trialstack.consent import handlers as consent
from trialstack.ecoa import commands as cmd
from trialstack.ecoa import handlers as ecoa
from trialstack.ecoa.model import QuestionnaireRefused
from trialstack.ecoa.readmodel import entries, open_alerts
from trialstack.errors import InvalidInput
from trialstack.ledger.envelope import Actor
from trialstack.ledger.schema import ledger_event
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

STUDY = "HTN-201"
STAFF = Actor("user:cora", "study_coordinator")
PARTICIPANT = Actor("user:pat", "participant")
PHQ9 = {f"PHQ{n:02d}": "1" for n in range(1, 10)} | {"PHQ10": "1"}
DIARY = {"TAKEN": "Y", "TAKENAT": "08:10", "DIZZY": "2", "HEADACHE": "3", "SWELLING": "0", "WELLBEING": "70"}


@pytest.fixture
def subject(platform: Platform, clock: FixedClock) -> str:
    """A consented subject at site 0101 (America/Chicago) with SCREENING and DAY1 on 2026-01-05."""
    definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", "study.yaml"))
        uow.commit()
    with platform.unit_of_work(STAFF) as uow:
        subject_id = capture.screen_subject(uow, STUDY, capture_cmd.ScreenSubject("0101", "2026-01-05")).subject_id
        assert subject_id is not None
        uow.commit()
    with platform.unit_of_work(STAFF) as uow:
        paper = consent_cmd.RecordPaperConsent(subject_id, "ICF", "1.0", "2026-01-05", choices={"BIOBANK": False})
        consent.record_paper_consent(uow, STUDY, "0101", ("cora", "Cora"), paper)
        uow.commit()
    for visit in ("SCREENING", "DAY1"):
        with platform.unit_of_work(STAFF) as uow:
            capture.record_visit_date(
                uow, STUDY, capture_cmd.RecordVisitDate(subject_id, VisitKey(visit), "2026-01-05")
            )
            uow.commit()
    return subject_id


def _submit(platform: Platform, command: cmd.SubmitQuestionnaire) -> ecoa.Submitted:
    with platform.unit_of_work(PARTICIPANT) as uow:
        submitted = ecoa.submit_questionnaire(uow, STUDY, "pat", command)
        uow.commit()
    return submitted


def _diary(
    subject: str, day: str, completed_at: str, client: str, answers: dict[str, str] = DIARY
) -> cmd.SubmitQuestionnaire:
    return cmd.SubmitQuestionnaire(subject, "DIARY", day, client, answers, completed_at)


def test_phq9_at_the_visit_is_scored_and_item_9_raises_a_clinical_alert(platform: Platform, subject: str) -> None:
    command = cmd.SubmitQuestionnaire(subject, "PHQ9", "DAY1", "tablet-0001", PHQ9, "2026-01-05T02:55:00-06:00",
                                      "site_tablet")  # fmt: skip
    submitted = _submit(platform, command)
    kinds = [event.event_type for event in submitted.events]
    assert kinds == ["QuestionnaireSubmitted", "QuestionnaireScored", "ClinicalAlertRaised"]
    assert submitted.events[1].payload["scores"] == [{"score": "TOTAL", "value": "9", "missing": 0}]
    again = _submit(platform, command)
    assert again.repeated and [e.hash for e in again.events] == [e.hash for e in submitted.events]
    with platform.engine.connect() as connection:
        (alert,) = open_alerts(connection, STUDY, frozenset({"0101"}))
        assert alert["kind"] == "clinical" and "item 9" in alert["message"]
    with platform.unit_of_work(Actor("user:ivan", "investigator")) as uow:
        ack = cmd.AcknowledgeClinicalAlert(subject, "PHQ9-ITEM9", "tablet-0001", "Called the participant; no risk.")
        ecoa.acknowledge_alert(uow, STUDY, "ivan", ack)
        uow.commit()
    with platform.engine.connect() as connection:
        assert open_alerts(connection, STUDY, None) == []


def test_instrument_not_due_required_item_and_scale_are_refused_naming_the_field(
    platform: Platform, subject: str
) -> None:
    cases = [
        (cmd.SubmitQuestionnaire(subject, "PHQ9", "WEEK2", "c-000001", PHQ9, "2026-01-05T02:55:00-06:00"), "entry"),
        (
            cmd.SubmitQuestionnaire(
                subject, "PHQ9", "DAY1", "c-000002", {**PHQ9, "PHQ03": ""}, "2026-01-05T02:55:00-06:00"
            ),
            "answers.PHQ03",
        ),
        (
            cmd.SubmitQuestionnaire(
                subject, "PHQ9", "DAY1", "c-000003", {**PHQ9, "PHQ03": "4"}, "2026-01-05T02:55:00-06:00"
            ),
            "answers.PHQ03",
        ),
        (
            cmd.SubmitQuestionnaire(
                subject, "PHQ9", "DAY1", "c-000004", {**PHQ9, "OTHER": "1"}, "2026-01-05T02:55:00-06:00"
            ),
            "answers.OTHER",
        ),
    ]
    with platform.engine.connect() as connection:
        before = len(connection.execute(select(ledger_event.c.id)).all())
    for command, field in cases:
        with pytest.raises((QuestionnaireRefused, InvalidInput)) as refused:
            _submit(platform, command)
        assert refused.value.field == field
    with platform.engine.connect() as connection:
        assert len(connection.execute(select(ledger_event.c.id)).all()) == before


def test_diary_windows_are_in_the_participants_time_zone(platform: Platform, subject: str, clock: FixedClock) -> None:
    clock.set(datetime(2026, 1, 6, 1, 0, tzinfo=UTC))  # 19:00 on 5 January in Chicago
    before_opening = _diary(subject, "2026-01-05", "2026-01-05T16:59:00-06:00", "d-000022")
    with pytest.raises(QuestionnaireRefused, match="outside its window"):
        _submit(platform, before_opening)
    _submit(platform, _diary(subject, "2026-01-05", "2026-01-05T19:00:00-06:00", "d-000001"))
    early = _diary(subject, "2026-01-06", "2026-01-05T19:05:00-06:00", "d-000002")
    with pytest.raises(QuestionnaireRefused, match="not due at '2026-01-06': its window opens 2026-01-06T17:00-06:00"):
        _submit(platform, early)
    clock.set(datetime(2026, 1, 7, 0, 0, tzinfo=UTC))  # 18:00 on 6 January in Chicago
    ahead = _diary(subject, "2026-01-06", "2026-01-06T18:30:00-06:00", "d-000003")
    with pytest.raises(QuestionnaireRefused, match="ahead of the server"):
        _submit(platform, ahead)
    clock.set(datetime(2026, 1, 8, 12, 0, tzinfo=UTC))
    late = _diary(subject, "2026-01-06", "2026-01-07T03:00:00-06:00", "d-000004")
    with pytest.raises(QuestionnaireRefused, match=r"window 2026-01-06T17:00-06:00 to 2026-01-07T01:59"):
        _submit(platform, late)
    offline = _diary(subject, "2026-01-07", "2026-01-07T20:00:00-06:00", "d-000005")
    received = _submit(platform, offline).events[0].payload
    assert (received["completed_at"], received["received_at"]) == ("2026-01-07T20:00:00-06:00",
                                                                   "2026-01-08T12:00:00.000000Z")  # fmt: skip


def test_the_sweep_records_missed_entries_and_low_compliance_once(
    platform: Platform, subject: str, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 1, 6, 1, 0, tzinfo=UTC))
    _submit(platform, _diary(subject, "2026-01-05", "2026-01-05T19:00:00-06:00", "d-000001"))
    clock.set(datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
    unit = lambda actor: platform.unit_of_work(actor)  # noqa: E731
    appended = ecoa.sweep_study(platform.engine, unit, STUDY)
    with platform.engine.connect() as connection:
        rows = {(row["entry"], row["status"]) for row in entries(connection, STUDY, subject)}
        alerts = open_alerts(connection, STUDY, None)
    assert {("2026-01-05", "completed"), ("2026-01-06", "missed"), ("2026-01-09", "missed")} <= rows
    assert ("2026-01-10", "missed") not in rows
    compliance = [a for a in alerts if a["kind"] == "compliance"]
    assert len(compliance) == 1 and "1 of 5 entries completed (20 %" in compliance[0]["message"]
    assert appended == 5
    clock.advance(timedelta(hours=1))
    assert ecoa.sweep_study(platform.engine, unit, STUDY) == 0
