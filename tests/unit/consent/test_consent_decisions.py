"""Consent decisions, pure: invitations, signing, countersigning, paper, withdrawal and re-consent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from trialstack.consent import commands as cmd
from trialstack.consent import events as ev
from trialstack.consent.model import (
    InvitationRefused,
    ParticipantConsent,
    WrongAnswer,
    decide_activate,
    decide_invite,
    fold,
)
from trialstack.consent.signing import (
    decide_countersign,
    decide_reconsent,
    decide_record_paper,
    decide_sign,
    decide_withdraw,
)
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.protocol.definition import ConsentVersion, StudyDefinition
from trialstack.standards.loader import load_study_file

DEMO = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RIGHT = {"Q1": "No, neither will know", "Q2": "Yes"}


@pytest.fixture(scope="module")
def demo() -> StudyDefinition:
    return load_study_file(DEMO)


def _invited(demo: StudyDefinition, hours: int = 72) -> ParticipantConsent:
    state = ParticipantConsent("HTN-201", "0101-001")
    command = cmd.InviteParticipant("0101-001", "en", hours)
    return fold(state, decide_invite(state, demo, command, "0101", "inv1", "c" * 64, NOW))


def _sign(demo: StudyDefinition, state: ParticipantConsent, **changes: object) -> ev.ConsentSigned:
    fields: dict[str, object] = {
        "subject_id": "0101-001", "document_id": "ICF", "version": "1.0", "language": "en",
        "printed_name": "A. Person", "sections_read": dict.fromkeys(range(1, 8), 20), "answers": RIGHT,
        "choices": {"BIOBANK": True},
    }  # fmt: skip
    fields.update(changes)
    return decide_sign(state, demo, "hash", cmd.SignConsent(**fields), "pat", ("ref", "mac"), None, NOW)  # type: ignore[arg-type]


def test_an_invitation_is_used_once_and_expires(demo: StudyDefinition) -> None:
    state = _invited(demo, hours=1)
    with pytest.raises(InvitationRefused, match="expired"):
        decide_activate(state, "c" * 64, "pat", NOW + timedelta(hours=1))
    with pytest.raises(InvitationRefused, match="not valid"):
        decide_activate(state, "d" * 64, "pat", NOW)
    activated = fold(state, decide_activate(state, "c" * 64, "pat", NOW))
    assert activated.username == "pat"
    with pytest.raises(InvitationRefused, match="already used"):
        decide_activate(activated, "c" * 64, "other", NOW)


def test_a_newer_invitation_replaces_the_older_code(demo: StudyDefinition) -> None:
    state = _invited(demo)
    newer = fold(state, decide_invite(state, demo, cmd.InviteParticipant("0101-001"), "0101", "inv2", "e" * 64, NOW))
    with pytest.raises(InvitationRefused, match="newer invitation"):
        decide_activate(newer, "c" * 64, "pat", NOW)


def test_an_invitation_needs_an_electronic_version_and_a_text_in_the_language(demo: StudyDefinition) -> None:
    state = ParticipantConsent("HTN-201", "0101-001")
    with pytest.raises(InvalidInput, match="'fr'"):
        decide_invite(state, demo, cmd.InviteParticipant("0101-001", "fr"), "0101", "i", "c" * 64, NOW)
    paper_only = demo.model_copy(
        update={"consent": (demo.consent[0].model_copy(update={"versions": (ConsentVersion(version="1.0"),)}),)}
    )
    with pytest.raises(DomainRuleViolation, match="paper"):
        decide_invite(state, paper_only, cmd.InviteParticipant("0101-001"), "0101", "i", "c" * 64, NOW)


def test_signing_checks_reading_answers_and_parts(demo: StudyDefinition) -> None:
    state = _invited(demo)
    with pytest.raises(WrongAnswer) as wrong:
        _sign(demo, state, answers={**RIGHT, "Q1": "Yes, both will know"})
    assert (wrong.value.field, wrong.value.section) == ("answers.Q1", 3)
    with pytest.raises(DomainRuleViolation, match="section 7 has not been read"):
        _sign(demo, state, sections_read=dict.fromkeys(range(1, 7), 5))
    with pytest.raises(InvalidInput, match="BIOBANK"):
        _sign(demo, state, choices={})
    with pytest.raises(DomainRuleViolation, match="not in force"):
        _sign(demo, state, version="2.0")
    with pytest.raises(InvalidInput, match="relationship"):
        _sign(demo, state, signed_by="legally_authorised_representative")
    signed = _sign(demo, state)
    assert signed.document_sha256 == demo.consent[0].versions[0].texts[0].sha256
    assert [s.seconds for s in signed.sections_read] == [20] * 7
    assert "A. Person" not in signed.model_dump_json()


def test_countersigning_needs_an_electronic_signature_and_another_person(demo: StudyDefinition) -> None:
    state = _invited(demo)
    with pytest.raises(DomainRuleViolation, match="no electronic signature"):
        decide_countersign(state, cmd.CountersignConsent("0101-001", "ICF"), "coord", "C", "study_coordinator", NOW)
    signed = fold(state, [_sign(demo, state)])
    with pytest.raises(DomainRuleViolation, match="cannot be the signer"):
        decide_countersign(signed, cmd.CountersignConsent("0101-001", "ICF"), "pat", "P", "participant", NOW)
    counter = decide_countersign(signed, cmd.CountersignConsent("0101-001", "ICF"), "coord", "C", "investigator", NOW)
    done = fold(signed, [counter])
    assert not done.document("ICF").awaiting_countersignature
    with pytest.raises(DomainRuleViolation, match="already countersigned"):
        decide_countersign(done, cmd.CountersignConsent("0101-001", "ICF"), "coord", "C", "investigator", NOW)


def test_paper_consent_is_dated_and_in_force_on_that_date(demo: StudyDefinition) -> None:
    state = ParticipantConsent("HTN-201", "0102-001")
    command = cmd.RecordPaperConsent("0102-001", "ICF", "1.0", "2025-12-01", choices={"BIOBANK": False})
    with pytest.raises(DomainRuleViolation, match="not in force"):
        decide_record_paper(state, demo, command, "0102", ("coord", "C"), date(2026, 3, 2))
    future = cmd.RecordPaperConsent("0102-001", "ICF", "1.0", "2026-03-03", choices={"BIOBANK": False})
    with pytest.raises(InvalidInput, match="future"):
        decide_record_paper(state, demo, future, "0102", ("coord", "C"), date(2026, 3, 2))
    good = cmd.RecordPaperConsent("0102-001", "ICF", "1.0", "2026-03-01", choices={"BIOBANK": False})
    recorded = decide_record_paper(state, demo, good, "0102", ("coord", "C"), date(2026, 3, 2))
    assert fold(state, recorded).document("ICF").consented


def test_withdrawal_of_what_was_never_consented_is_refused(demo: StudyDefinition) -> None:
    state = ParticipantConsent("HTN-201", "0101-001")
    with pytest.raises(DomainRuleViolation, match="never consented"):
        decide_withdraw(state, demo, cmd.WithdrawConsent("0101-001", "ICF", "2026-03-02", "r"), date(2026, 3, 2))
    signed = fold(_invited(demo), [_sign(demo, _invited(demo), choices={"BIOBANK": False})])
    with pytest.raises(NotFound, match="never agreed"):
        decide_withdraw(signed, demo, cmd.WithdrawConsent("0101-001", "ICF", "2026-03-02", "r", part="BIOBANK"),
                        date(2026, 3, 2))  # fmt: skip
    full = cmd.WithdrawConsent("0101-001", "ICF", "2026-03-02", "moving away", continues=("safety_follow_up",))
    withdrawn = fold(signed, decide_withdraw(signed, demo, full, date(2026, 3, 2)))
    assert withdrawn.document("ICF").withdrawn_on == "2026-03-02"
    assert withdrawn.document("ICF").continues == ("safety_follow_up",)


def test_reconsent_is_required_of_those_who_signed_an_earlier_version(demo: StudyDefinition) -> None:
    document = demo.consent[0]
    version = document.versions[0].model_copy(update={"version": "2.0", "reconsent": {}})
    never_signed = ParticipantConsent("HTN-201", "0101-002")
    assert decide_reconsent(never_signed, document, version, "h", date(2026, 3, 5)) == []
    signed = fold(_invited(demo), [_sign(demo, _invited(demo))])
    (due,) = decide_reconsent(signed, document, version, "h", date(2026, 3, 5))
    assert isinstance(due, ev.ReconsentRequired) and (due.version, due.previous_version) == ("2.0", "1.0")
    assert decide_reconsent(fold(signed, [due]), document, version, "h", date(2026, 3, 5)) == []
    no_reconsent = version.model_copy(update={"reconsent": "none"})
    assert decide_reconsent(signed, document, no_reconsent, "h", date(2026, 3, 5)) == []
    left_out = version.model_copy(update={"reconsent": None})  # a new version in an amendment: everyone re-signs
    assert len(decide_reconsent(signed, document, left_out, "h", date(2026, 3, 5))) == 1
