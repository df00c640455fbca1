"""eConsent through the handlers on SQLite and PostgreSQL: sign, countersign, the signed copy, re-consent gating."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import REPO_ROOT
from trialstack.bootstrap import Platform
from trialstack.capture import commands as capture_cmd
from trialstack.capture import handlers as capture
from trialstack.capture.consent_gate import ConsentRequired
from trialstack.capture.refs import VisitKey
from trialstack.clock import FixedClock
from trialstack.consent import commands as cmd
from trialstack.consent import handlers as consent
from trialstack.consent.model import WrongAnswer
from trialstack.consent.readmodel import tracker_rows
from trialstack.identity import commands as identity_cmd
from trialstack.identity import handlers as identity
from trialstack.identity.readmodel import load_principal
from trialstack.ledger.envelope import Actor
from trialstack.ledger.projections import checksum, rebuild
from trialstack.ledger.schema import ledger_event
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import ConsentVersion, StudyDefinition
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

STUDY = "HTN-201"
STAFF = Actor("user:cora", "study_coordinator")
PASSWORD = "Correct-Horse-9-battery"
RIGHT = {"Q1": "No, neither will know", "Q2": "Yes"}
DEMO = REPO_ROOT / "studies" / "demo"


@pytest.fixture
def demo(platform: Platform) -> StudyDefinition:
    definition = load_study_file(DEMO / "study.yaml")
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", "study.yaml"))
        uow.commit()
    return definition


def _screen(platform: Platform, site: str) -> str:
    with platform.unit_of_work(STAFF) as uow:
        outcome = capture.screen_subject(uow, STUDY, capture_cmd.ScreenSubject(site_id=site, screened_on="2026-01-05"))
        uow.commit()
    assert outcome.subject_id is not None
    return outcome.subject_id


def _participant(platform: Platform, subject: str, username: str) -> None:
    with platform.unit_of_work(STAFF) as uow:
        code = consent.invite_participant(uow, STUDY, subject[:4], cmd.InviteParticipant(subject)).code
        uow.commit()
    with platform.unit_of_work(Actor(f"user:{username}", "participant")) as uow:
        activated = consent.activate_participant(uow, cmd.ActivateParticipant(code, username, PASSWORD))
        identity.open_participant_account(
            uow,
            identity_cmd.OpenParticipantAccount(username, PASSWORD, STUDY, activated.site_id, activated.subject_id),
        )
        uow.commit()


def _sign(platform: Platform, subject: str, username: str, version: str = "1.0", sections: int = 7) -> str:
    command = cmd.SignConsent(
        subject, "ICF", version, "en", "Jürgen Müller", dict.fromkeys(range(1, sections + 1), 12), RIGHT,
        {"BIOBANK": True},
    )  # fmt: skip
    with platform.unit_of_work(Actor(f"user:{username}", "participant")) as uow:
        (signed,) = consent.sign_consent(uow, STUDY, username, command)
        uow.commit()
    return str(signed.payload["copy_sha256"])


def _visit(platform: Platform, subject: str, visit: str, day: str) -> None:
    with platform.unit_of_work(STAFF) as uow:
        capture.record_visit_date(uow, STUDY, capture_cmd.RecordVisitDate(subject, VisitKey(visit), day))
        uow.commit()


def _events(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ledger_event)).scalar_one())


def test_participant_signs_the_coordinator_countersigns_and_the_copy_renders_again(
    platform: Platform, demo: StudyDefinition
) -> None:
    subject = _screen(platform, "0101")
    with pytest.raises(ConsentRequired, match="consent to ICF"):
        _visit(platform, subject, "SCREENING", "2026-01-05")
    _participant(platform, subject, "pat-one")
    with platform.engine.connect() as connection:
        principal = load_principal(connection, "pat-one")
    assert principal is not None and principal.own_subject(STUDY) == subject
    before = _events(platform)
    wrong = cmd.SignConsent(subject, "ICF", "1.0", "en", "X", dict.fromkeys(range(1, 8), 1), {**RIGHT, "Q2": "No"}, {})
    with pytest.raises(WrongAnswer), platform.unit_of_work(Actor("user:pat-one", "participant")) as uow:
        consent.sign_consent(uow, STUDY, "pat-one", wrong)
    assert _events(platform) == before
    first_copy = _sign(platform, subject, "pat-one")
    with platform.unit_of_work(STAFF) as uow:
        (counter,) = consent.countersign_consent(
            uow, STUDY, "cora", "Cora Coordinator", "study_coordinator", cmd.CountersignConsent(subject, "ICF")
        )
        uow.commit()
    with platform.engine.connect() as connection:
        rendered, expected = consent.render_from_ledger(connection, platform.vault, STUDY, subject, "ICF")
        stored = consent.signed_copy_pdf(connection, platform.vault, STUDY, subject, expected)
        first = consent.signed_copy_pdf(connection, platform.vault, STUDY, subject, first_copy)
        payloads = [row[0] for row in connection.execute(select(ledger_event.c.payload))]
    assert expected == counter.payload["copy_sha256"] == hashlib.sha256(stored).hexdigest()
    assert rendered == stored and first != stored
    assert not any("Müller" in payload for payload in payloads)
    _visit(platform, subject, "SCREENING", "2026-01-05")


def _amend(platform: Platform, demo: StudyDefinition, scope: dict[str, list[str]]) -> None:
    document = demo.consent[0]
    text = (DEMO / "consent" / "icf-2.0-en.md").read_text(encoding="utf-8")
    old = document.versions[0]
    new = ConsentVersion.model_validate(
        {
            "version": "2.0", "effective": "2026-01-06", "ethics_approval": "EC-2", "reconsent": scope,
            "texts": [{"language": "en", "text": text, "questions": [q.model_dump() for q in old.texts[0].questions]}],
            "optional_parts": [part.model_dump() for part in old.optional_parts],
        }
    )  # fmt: skip
    amended = demo.model_copy(update={"consent": (document.model_copy(update={"versions": (old, new)}),)})
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(amended), "yaml", "amendment", "Amendment 1"))
        uow.commit()


def _paper(platform: Platform, subject: str, version: str, day: str) -> None:
    record = cmd.RecordPaperConsent(subject, "ICF", version, day, choices={"BIOBANK": False})
    with platform.unit_of_work(STAFF) as uow:
        consent.record_paper_consent(uow, STUDY, subject[:4], ("cora", "Cora Coordinator"), record)
        uow.commit()


def test_an_amendment_requires_reconsent_of_the_subjects_in_its_scope_and_gates_their_next_visit(
    platform: Platform, demo: StudyDefinition, clock: FixedClock
) -> None:
    at_0101, at_0102, not_consented = _screen(platform, "0101"), _screen(platform, "0102"), _screen(platform, "0102")
    for subject in (at_0101, at_0102):
        _paper(platform, subject, "1.0", "2026-01-05")
        _visit(platform, subject, "SCREENING", "2026-01-05")
    clock.advance(timedelta(days=1))
    _amend(platform, demo, {"sites": ["0102"]})
    with platform.engine.connect() as connection:
        rows = {row["subject_id"]: row for row in tracker_rows(connection, STUDY, None)}
    assert rows[at_0102]["reconsent_version"] == "2.0" and rows[at_0102]["reconsent_on"] == "2026-01-06"
    assert rows[at_0101]["reconsent_version"] is None and rows[not_consented]["reconsent_version"] is None
    _visit(platform, at_0101, "DAY1", "2026-01-06")
    with pytest.raises(ConsentRequired, match=r"re-consent to ICF version 2\.0"):
        _visit(platform, at_0102, "DAY1", "2026-01-06")
    _paper(platform, at_0102, "2.0", "2026-01-06")
    _visit(platform, at_0102, "DAY1", "2026-01-06")
    with platform.engine.connect() as connection:
        tables = [table for projection in platform.wiring.projections for table in projection.tables]
        before = checksum(connection, tables)
    rebuild(platform.engine, platform.wiring)
    with platform.engine.connect() as connection:
        assert checksum(connection, tables) == before


def test_reconsent_scoped_to_an_epoch_follows_the_subjects_last_visit(
    platform: Platform, demo: StudyDefinition, clock: FixedClock
) -> None:
    screening_only, treated = _screen(platform, "0101"), _screen(platform, "0101")
    for subject in (screening_only, treated):
        _paper(platform, subject, "1.0", "2026-01-05")
        _visit(platform, subject, "SCREENING", "2026-01-05")
    epoch_of_day1 = next(v.epoch for v in demo.schedule.visits if v.id == "DAY1")
    assert epoch_of_day1 is not None
    _visit(platform, treated, "DAY1", "2026-01-05")
    clock.advance(timedelta(days=1))
    _amend(platform, demo, {"epochs": [epoch_of_day1]})
    with platform.engine.connect() as connection:
        rows = {row["subject_id"]: row["reconsent_version"] for row in tracker_rows(connection, STUDY, None)}
    assert rows == {screening_only: None, treated: "2.0"}
