"""The LZZT study imported from USDM runs: a subject is screened at its site, visits are dated, and a visit
outside its window is flagged by capture from the imported schedule, and a subject is enrolled through the
eligibility confirmation form generated from the criteria (SQLite ledger, real handlers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from tests.standards.conftest import lzzt_usdm
from trialstack.bootstrap import Platform, bootstrap
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.clock import FixedClock
from trialstack.errors import DomainRuleViolation
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import CriterionKind
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.settings import Settings
from trialstack.standards.usdm_import import import_usdm_file

T = TypeVar("T")
STUDY = "H2Q-MC-LZZT"
COORDINATOR = Actor("user:coordinator", "study_coordinator")


@pytest.fixture
def lzzt(tmp_path: Path) -> Iterator[Platform]:
    clock = FixedClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    platform = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"), clock=clock, migrate=True)
    version = study_version(import_usdm_file(lzzt_usdm()).definition)
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(version, "usdm-4", "CDISC_Pilot_Study.json"))
        uow.commit()
    try:
        yield platform
    finally:
        platform.close()


def run(platform: Platform, handler: Callable[..., T], *args: object) -> T:
    with platform.unit_of_work(COORDINATOR) as uow:
        result = handler(uow, *args)
        uow.commit()
    return result


def _date(platform: Platform, subject: str, visit: str, day: str) -> handlers.Outcome:
    command = cmd.RecordVisitDate(subject, VisitKey(visit), day)
    outcome: handlers.Outcome = run(platform, handlers.record_visit_date, STUDY, command)
    return outcome


def _window(outcome: handlers.Outcome, visit: str) -> bool | None:
    return next(result.result for result in outcome.checks if result.check_id == f"{visit}-WINDOW")


def test_subjects_can_be_screened_and_visits_outside_their_window_are_flagged(lzzt: Platform) -> None:
    screened = run(lzzt, handlers.screen_subject, STUDY, cmd.ScreenSubject("SITE_1", "2026-02-16"))
    subject = screened.subject_id
    assert subject == "SITE_1-001"
    assert _window(_date(lzzt, subject, "E1", "2026-02-16"), "E1") is None  # no anchor date yet
    _date(lzzt, subject, "E3", "2026-03-02")  # baseline: study day 1
    assert _window(_date(lzzt, subject, "E4", "2026-03-19"), "E4") is True  # day 18: week 2 (15) + 3
    late = _date(lzzt, subject, "E5", "2026-04-03")  # day 33: week 4 is day 29 +/- 3
    assert _window(late, "E5") is False
    flagged = next(result for result in late.checks if result.check_id == "E5-WINDOW")
    assert flagged.message == "Week 4 on 2026-04-03 is outside its window (study day 26 to 32)."


def _confirm(platform: Platform, subject: str, answers: dict[str, str]) -> None:
    form = FormKey("IE", VisitKey("E3"))
    items = {item: cmd.ItemInput(value) for item, value in answers.items()}
    run(platform, handlers.save_form, STUDY, cmd.SaveForm(subject, form, items))


def test_subjects_are_enrolled_through_the_eligibility_confirmation_form(lzzt: Platform) -> None:
    eligibility = import_usdm_file(lzzt_usdm()).definition.eligibility
    assert eligibility is not None
    eligible = {c.id: "Y" if c.kind is CriterionKind.INCLUSION else "N" for c in eligibility.criteria}
    excluded = next(c.id for c in eligibility.criteria if c.kind is CriterionKind.EXCLUSION)
    subjects = []
    for answers in (eligible, {**eligible, excluded: "Y"}):
        subject = run(lzzt, handlers.screen_subject, STUDY, cmd.ScreenSubject("SITE_1", "2026-05-18")).subject_id
        assert subject is not None
        _date(lzzt, subject, "E3", "2026-06-01")
        _confirm(lzzt, subject, answers)
        subjects.append(subject)
    enrolled = run(lzzt, handlers.enrol_subject, STUDY, cmd.EnrolSubject(subjects[0], "2026-06-01"))
    assert [event.event_type for event in enrolled.events] == ["SubjectEnrolled"]
    assert enrolled.events[0].payload["criteria"] == list(eligible)
    with pytest.raises(DomainRuleViolation, match=f"not eligible: criteria {excluded} are not met"):
        run(lzzt, handlers.enrol_subject, STUDY, cmd.EnrolSubject(subjects[1], "2026-06-01"))
