"""Capture refuses consent-gated work from the consent events it has seen, and says which consent is missing."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from trialstack.capture import events as cev
from trialstack.capture.consent_gate import ConsentRequired, check_consent
from trialstack.capture.model import Casebook, SubjectStatus
from trialstack.capture.refs import VisitKey
from trialstack.consent import events as ev
from trialstack.consent.events import ConsentView, see
from trialstack.protocol.definition import StudyDefinition
from trialstack.standards.loader import load_study_file

DEMO = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"


@pytest.fixture(scope="module")
def demo() -> StudyDefinition:
    return load_study_file(DEMO)


def _casebook(**dates: str) -> Casebook:
    visits = MappingProxyType({VisitKey(v): d for v, d in dates.items()})
    return Casebook("HTN-201", "0101-001", "0101", SubjectStatus.SCREENING, "2026-03-01", visit_dates=visits)


def _entered(form: str) -> cev.ItemValueEntered:
    return cev.ItemValueEntered(subject_id="0101-001", form=form, item="X", value="1", study_version="h")


def _visit(visit: str, previous: str | None = None) -> cev.VisitDateRecorded:
    return cev.VisitDateRecorded(
        subject_id="0101-001", visit=visit, visit_date="2026-03-09", previous_date=previous, study_version="h"
    )


def _view(*events: object) -> ConsentView:
    view = ConsentView()
    for event in events:
        view = see(view, event)
    return view


PAPER = ev.ConsentRecordedOnPaper(
    subject_id="0101-001", site_id="0101", document_id="ICF", version="1.0", language="en", signed_on="2026-03-01",
    obtained_by="c", obtained_by_name="C", choices=[ev.PartChoice(part="BIOBANK", agreed=True)],
)  # fmt: skip
DUE = ev.ReconsentRequired(
    subject_id="0101-001", document_id="ICF", version="2.0", previous_version="1.0", study_version="h",
    required_on="2026-03-05",
)  # fmt: skip


def test_visit_data_and_enrolment_wait_for_the_first_consent(demo: StudyDefinition) -> None:
    with pytest.raises(ConsentRequired, match="consent to ICF"):
        check_consent(demo, _casebook(), _view(), [_visit("SCREENING")])
    with pytest.raises(ConsentRequired, match="enrolment"):
        enrolled = cev.SubjectEnrolled(subject_id="0101-001", enrolled_on="2026-03-02", criteria=[], study_version="h")
        check_consent(demo, _casebook(), _view(), [enrolled])
    check_consent(demo, _casebook(), _view(PAPER), [_visit("SCREENING"), _entered("SCREENING.VS")])


def test_a_study_without_consent_documents_gates_nothing(demo: StudyDefinition) -> None:
    check_consent(demo.model_copy(update={"consent": ()}), _casebook(), _view(), [_visit("SCREENING")])


def test_reconsent_due_refuses_new_visits_but_not_corrections_or_earlier_visits(demo: StudyDefinition) -> None:
    view = _view(PAPER, DUE)
    with pytest.raises(ConsentRequired, match=r"re-consent to ICF version 2\.0"):
        check_consent(demo, _casebook(SCREENING="2026-03-01"), view, [_visit("DAY1")])
    check_consent(demo, _casebook(SCREENING="2026-03-01"), view, [_visit("SCREENING", previous="2026-03-01")])
    check_consent(demo, _casebook(SCREENING="2026-03-01"), view, [_entered("SCREENING.VS")])
    signed_again = ev.ConsentRecordedOnPaper(**{**PAPER.model_dump(), "version": "2.0", "signed_on": "2026-03-06"})
    check_consent(demo, _casebook(SCREENING="2026-03-01"), see(view, signed_again), [_visit("DAY1")])


def test_after_full_withdrawal_only_safety_follow_up_continues(demo: StudyDefinition) -> None:
    withdrawn = ev.ConsentWithdrawn(
        subject_id="0101-001", document_id="ICF", continues=["safety_follow_up"], withdrawn_on="2026-03-08"
    )
    view = _view(PAPER, withdrawn)
    casebook = _casebook(SCREENING="2026-03-01", DAY1="2026-03-09")
    with pytest.raises(ConsentRequired, match="withdrawn on 2026-03-08"):
        check_consent(demo, casebook, view, [_entered("DAY1.VS")])
    check_consent(demo, _casebook(SCREENING="2026-03-01"), view, [_entered("SCREENING.VS")])
    check_consent(demo, casebook, view, [_entered("AE.1")])
    nothing_continues = _view(PAPER, withdrawn.model_copy(update={"continues": []}))
    with pytest.raises(ConsentRequired, match="continues: nothing"):
        check_consent(demo, casebook, nothing_continues, [_entered("AE.1")])


def test_forms_of_an_optional_part_need_a_yes(demo: StudyDefinition) -> None:
    document = demo.consent[0]
    version = document.versions[0]
    part = version.optional_parts[0].model_copy(update={"forms": ("LB",)})
    study = demo.model_copy(
        update={
            "consent": (
                document.model_copy(update={"versions": (version.model_copy(update={"optional_parts": (part,)}),)}),
            )
        }
    )
    check_consent(study, _casebook(), _view(PAPER), [_entered("SCREENING.LB")])
    said_no = ev.ConsentWithdrawn(
        subject_id="0101-001", document_id="ICF", part="BIOBANK", continues=[], withdrawn_on="2026-03-02"
    )
    with pytest.raises(ConsentRequired, match="optional part BIOBANK"):
        check_consent(study, _casebook(), _view(PAPER, said_no), [_entered("SCREENING.LB")])
