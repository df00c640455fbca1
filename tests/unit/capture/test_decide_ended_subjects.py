"""What a casebook still accepts after the subject failed screening or withdrew: corrections (with a reason) of data
already entered, anywhere; new data only where the subject could still have it. A lock still refuses everything."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from tests.conftest import REPO_ROOT
from trialstack.capture import commands as cmd
from trialstack.capture import decide
from trialstack.capture import events as ev
from trialstack.capture.checks import StudyRules, rules_for
from trialstack.capture.model import Casebook, StudyStatus, SubjectStatus
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.errors import DomainRuleViolation, InvalidInput
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

STUDY = StudyStatus("HTN-201")
SUBJECT = "0101-001"
TODAY = date(2026, 4, 1)
V = "v1"


@pytest.fixture(scope="module")
def rules() -> StudyRules:
    return rules_for(study_version(load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")))


def _dated(visit: str, on: str) -> ev.VisitDateRecorded:
    return ev.VisitDateRecorded(subject_id=SUBJECT, visit=visit, visit_date=on, study_version=V)


def _entered(form: str, item: str, value: str) -> ev.ItemValueEntered:
    return ev.ItemValueEntered(subject_id=SUBJECT, form=form, item=item, value=value, study_version=V)


def _on_study() -> Casebook:
    """Screened on 5 January, screening vital signs and Day 1 (2 February) partly entered, one adverse event."""
    events: list[ev.CaptureEvent] = [
        ev.SubjectScreened(subject_id=SUBJECT, site_id="0101", screened_on="2026-01-05", study_version=V),
        _dated("SCREENING", "2026-01-05"),
        _entered("SCREENING.VS", "SYSBP", "184"),
        _entered("SCREENING.VS", "PULSE", "72"),
        _dated("DAY1", "2026-02-02"),
        _entered("DAY1.IE", "IEYN", "N"),
        _entered("DAY1.VS", "SYSBP", "181"),
        _entered("AE.1", "AETERM", "Headache"),
    ]
    return decide.fold(Casebook("HTN-201", SUBJECT), events)


def _screen_failed() -> Casebook:
    failed = ev.SubjectScreenFailed(
        subject_id=SUBJECT, failed_on="2026-02-02", failed_criteria=["IN02"], study_version=V
    )
    return decide.fold(_on_study(), [failed])


def _withdrawn() -> Casebook:
    """Enrolled at Day 1, Week 2 and Week 4 held, withdrawn on 5 March (Week 4 not entered yet)."""
    events: list[ev.CaptureEvent] = [
        ev.SubjectEnrolled(subject_id=SUBJECT, enrolled_on="2026-02-02", criteria=[], study_version=V),
        _dated("WEEK2", "2026-02-16"),
        _entered("WEEK2.VS", "SYSBP", "150"),
        ev.SubjectWithdrawn(subject_id=SUBJECT, withdrawn_on="2026-03-05"),
    ]
    return decide.fold(_on_study(), events)


def _save(
    rules: StudyRules, casebook: Casebook, form: str, reason: str | None = None, **items: cmd.ItemInput
) -> decide.Decision:
    return decide.save_form(casebook, STUDY, rules, cmd.SaveForm(SUBJECT, FormKey.parse(form), items, reason), TODAY)


def _date(rules: StudyRules, casebook: Casebook, visit: str, on: str, reason: str | None = None) -> decide.Decision:
    command = cmd.RecordVisitDate(SUBJECT, VisitKey.parse(visit), on, reason)
    return decide.record_visit_date(casebook, STUDY, rules, command, TODAY)


def _types(decision: decide.Decision) -> list[str]:
    return [type(event).__name__ for event in decision.events]


def test_the_fold_remembers_when_the_subject_left(rules: StudyRules) -> None:
    assert (_on_study().ended_on, _on_study().ended_early) == (None, False)
    failed = _screen_failed()
    assert (failed.status, failed.ended_on, failed.ended_early) == (SubjectStatus.SCREEN_FAILED, "2026-02-02", True)
    withdrawn = _withdrawn()
    assert (withdrawn.status, withdrawn.ended_on, withdrawn.ended_early) == (
        SubjectStatus.WITHDRAWN,
        "2026-03-05",
        True,
    )


def test_a_screen_failure_screening_data_can_be_corrected_with_a_reason(rules: StudyRules) -> None:
    casebook = _screen_failed()
    decision = _save(rules, casebook, "SCREENING.VS", "transcription error", SYSBP=cmd.ItemInput("148"))
    changed = decision.events[0]
    assert isinstance(changed, ev.ItemValueChanged)
    assert (changed.value, changed.previous_value) == ("148", "184")
    assert decision.reasons[0] == "transcription error"
    with pytest.raises(InvalidInput, match="needs a reason for change"):
        _save(rules, casebook, "SCREENING.VS", SYSBP=cmd.ItemInput("149"))


def test_a_screen_failure_screening_forms_can_still_be_completed(rules: StudyRules) -> None:
    decision = _save(rules, _screen_failed(), "SCREENING.LB", LBPERF=cmd.ItemInput("Y"))
    assert _types(decision)[0] == "ItemValueEntered" and not decision.reasons


def test_a_screen_failure_day1_data_can_be_corrected_or_marked_not_done_but_not_added(rules: StudyRules) -> None:
    casebook = _screen_failed()
    corrected = _save(rules, casebook, "DAY1.IE", "answered for the wrong criterion", IEYN=cmd.ItemInput("Y"))
    assert _types(corrected)[0] == "ItemValueChanged"
    not_done = _save(rules, casebook, "DAY1.VS", "cuff faulty", SYSBP=cmd.ItemInput(not_done_reason="NOT DONE"))
    assert _types(not_done)[0] == "ItemMarkedNotDone" and not_done.reasons[0] == "cuff faulty"
    with pytest.raises(DomainRuleViolation, match="failed screening on 2026-02-02: visit DAY1 takes no new data") as no:
        _save(rules, casebook, "DAY1.VS", PULSE=cmd.ItemInput("70"))
    assert no.value.field == "items.PULSE"
    with pytest.raises(DomainRuleViolation, match="takes no new data"):
        _save(rules, casebook, "DAY1.VS", PULSE=cmd.ItemInput(not_done_reason="NOT DONE"))
    with pytest.raises(DomainRuleViolation, match="takes no new data"):  # one new item refuses the whole save
        _save(rules, casebook, "DAY1.VS", "typo", SYSBP=cmd.ItemInput("180"), DIABP=cmd.ItemInput("99"))


def test_a_screen_failure_takes_no_new_visit_but_its_dates_can_be_corrected(rules: StudyRules) -> None:
    casebook = _screen_failed()
    for visit in ("WEEK2", "UNSCHED.1", "EOS"):
        with pytest.raises(DomainRuleViolation, match="failed screening on 2026-02-02: only screening visits"):
            _date(rules, casebook, visit, "2026-02-16")
    with pytest.raises(DomainRuleViolation, match="failed screening") as undated:
        _save(rules, casebook, "WEEK2.VS", PULSE=cmd.ItemInput("70"))
    assert "record the date" not in undated.value.message
    corrected = _date(rules, casebook, "DAY1", "2026-02-01", reason="date from the IRT confirmation")
    assert _types(corrected)[0] == "VisitDateRecorded" and corrected.reasons[0] == "date from the IRT confirmation"
    with pytest.raises(InvalidInput, match="needs a reason"):
        _date(rules, casebook, "DAY1", "2026-02-01")


def test_a_screening_visit_can_still_be_dated_after_a_screen_failure(rules: StudyRules) -> None:
    undated = decide.fold(
        Casebook("HTN-201", SUBJECT),
        [
            ev.SubjectScreened(subject_id=SUBJECT, site_id="0101", screened_on="2026-01-05", study_version=V),
            ev.SubjectScreenFailed(subject_id=SUBJECT, failed_on="2026-01-06", failed_criteria=[], study_version=V),
        ],
    )
    assert _types(_date(rules, undated, "SCREENING", "2026-01-05"))[0] == "VisitDateRecorded"


@pytest.mark.parametrize("ended", [_screen_failed, _withdrawn], ids=["screen failed", "withdrawn"])
def test_adverse_events_are_still_reported_and_completed(rules: StudyRules, ended: Callable[[], Casebook]) -> None:
    casebook = ended()
    assert _types(_save(rules, casebook, "AE.1", AESTDAT=cmd.ItemInput("2026-01-20")))[0] == "ItemValueEntered"
    assert _types(_save(rules, casebook, "AE.2", AETERM=cmd.ItemInput("Nausea")))[0] == "ItemValueEntered"
    corrected = _save(rules, casebook, "AE.1", "misspelt", AETERM=cmd.ItemInput("Headaches"))
    assert _types(corrected)[0] == "ItemValueChanged"


def test_a_withdrawn_subject_keeps_the_visits_held_by_then_and_the_end_of_study_visit(rules: StudyRules) -> None:
    casebook = _withdrawn()
    late_entry = _date(rules, casebook, "WEEK4", "2026-03-02")
    assert _types(late_entry)[0] == "VisitDateRecorded"
    after_week4 = decide.fold(casebook, late_entry.events)
    assert _types(_save(rules, after_week4, "WEEK4.VS", PULSE=cmd.ItemInput("70")))[0] == "ItemValueEntered"
    with pytest.raises(DomainRuleViolation, match="withdrew on 2026-03-05: only visits held by then"):
        _date(rules, casebook, "WEEK8", "2026-03-30")
    with pytest.raises(DomainRuleViolation, match="withdrew on 2026-03-05"):
        _date(rules, casebook, "UNSCHED.1", "2026-03-06")
    eos = decide.fold(casebook, _date(rules, casebook, "EOS", "2026-03-06").events)
    ds = _save(
        rules, eos, "EOS.DS", DSDECOD=cmd.ItemInput("WITHDRAWAL BY SUBJECT"), DSSTDAT=cmd.ItemInput("2026-03-05")
    )
    assert _types(ds)[:2] == ["ItemValueEntered", "ItemValueEntered"]


def test_a_withdrawn_subject_data_can_be_corrected_and_completed_up_to_the_withdrawal(rules: StudyRules) -> None:
    casebook = _withdrawn()
    assert _types(_save(rules, casebook, "WEEK2.VS", "typo", SYSBP=cmd.ItemInput("151")))[0] == "ItemValueChanged"
    assert _types(_save(rules, casebook, "WEEK2.VS", PULSE=cmd.ItemInput("70")))[0] == "ItemValueEntered"
    moved = decide.fold(casebook, _date(rules, casebook, "WEEK4", "2026-03-02").events)
    later = decide.fold(moved, _date(rules, moved, "WEEK4", "2026-03-09", reason="wrong page").events)
    with pytest.raises(DomainRuleViolation, match="visit WEEK4 takes no new data"):
        _save(rules, later, "WEEK4.VS", PULSE=cmd.ItemInput("70"))


@pytest.mark.parametrize("ended", [_screen_failed, _withdrawn], ids=["screen failed", "withdrawn"])
def test_a_locked_casebook_refuses_corrections_too(rules: StudyRules, ended: Callable[[], Casebook]) -> None:
    locked = decide.fold(ended(), [ev.CasebookLocked(subject_id=SUBJECT)])
    with pytest.raises(DomainRuleViolation, match="is locked"):
        _save(rules, locked, "SCREENING.VS", "typo", SYSBP=cmd.ItemInput("150"))
    with pytest.raises(DomainRuleViolation, match="is locked"):
        _date(rules, locked, "SCREENING", "2026-01-04", reason="typo")


def test_subjects_on_study_take_new_data_at_every_dated_visit(rules: StudyRules) -> None:
    casebook = _on_study()
    assert decide.new_data_refusal(rules, casebook, FormKey.parse("DAY1.VS")) is None
    assert _types(_save(rules, casebook, "DAY1.VS", PULSE=cmd.ItemInput("70")))[0] == "ItemValueEntered"
    assert _types(_date(rules, casebook, "WEEK2", "2026-02-16"))[0] == "VisitDateRecorded"
    assert _types(_save(rules, casebook, "AE.2", AETERM=cmd.ItemInput("Dizziness")))[0] == "ItemValueEntered"
