"""The casebook page of a subject who failed screening or withdrew (SQLite and PostgreSQL): visits the subject can no
longer have read "Not applicable", not "Enter the visit date first"; visits still possible keep their prompt."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.consenting import consent_on_paper
from tests.integration.identity.support import PASSWORD, SITE_A, STUDY, add_user, client_class
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.clock import FixedClock
from trialstack.identity.policy import Role
from trialstack.ledger.envelope import Actor
from trialstack.protocol.definition import VisitType

TestClient = client_class()
SITE = Actor("user:cora", "study_coordinator")
PROMPT = "Enter the visit date first"


def _run(platform: Platform, handler: Any, command: object) -> str:
    with platform.unit_of_work(SITE) as uow:
        outcome = handler(uow, STUDY, command)
        uow.commit()
    return str(outcome.subject_id)


def _form(platform: Platform, subject: str, form: str, **values: str) -> None:
    items = {item: cmd.ItemInput(value) for item, value in values.items()}
    _run(platform, handlers.save_form, cmd.SaveForm(subject, FormKey.parse(form), items))


def _screened(platform: Platform) -> str:
    subject = _run(platform, handlers.screen_subject, cmd.ScreenSubject(SITE_A, "2026-01-05"))
    consent_on_paper(platform, STUDY, subject, "2026-01-05")
    _run(platform, handlers.record_visit_date, cmd.RecordVisitDate(subject, VisitKey("SCREENING"), "2026-01-05"))
    _form(platform, subject, "SCREENING.IC", ICDAT="2026-01-05", ICVERS="1.0")
    return subject


def _withdrawn(platform: Platform) -> str:
    """Eligible, enrolled on 6 February 2026, withdrawn on 9 February (the clock's today)."""
    subject = _screened(platform)
    _form(
        platform, subject, "SCREENING.DM", BRTHDAT="1970-03-01", SEX="M", RACE="WHITE", ETHNIC="NOT HISPANIC OR LATINO"
    )
    vitals = {"VSDAT": "2026-01-05", "SYSBP": "165", "DIABP": "95", "PULSE": "72", "WEIGHT": "80.5", "HEIGHT": "175"}
    _form(platform, subject, "SCREENING.VS", **vitals)
    labs = {
        "LBPERF": "Y",
        "LBDAT": "2026-01-05",
        "K": "4.4",
        "SODIUM": "140",
        "CREAT": "0.9",
        "ALT": "25",
        "GLUC": "95",
    }
    _form(platform, subject, "SCREENING.LB", **labs)
    _run(platform, handlers.record_visit_date, cmd.RecordVisitDate(subject, VisitKey("DAY1"), "2026-02-06"))
    _form(platform, subject, "DAY1.IE", IEINC03="Y", IEEXC02="N", IEEXC04="N", IEYN="Y")
    _run(platform, handlers.enrol_subject, cmd.EnrolSubject(subject, "2026-02-06"))
    _run(platform, handlers.withdraw_subject, cmd.WithdrawSubject(subject, "2026-02-09", "withdrew consent"))
    return subject


@pytest.fixture
def clock() -> FixedClock:
    """Today is 9 February 2026: screened on 5 January (the day ICF 1.0 took effect), Day 1 on 6 February."""
    return FixedClock(datetime(2026, 2, 9, 9, 0, tzinfo=UTC))


@pytest.fixture
def web(loaded: Platform) -> Any:
    add_user(loaded, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    client = TestClient(create_app(loaded), follow_redirects=False)
    assert client.post("/login", data={"username": "cora", "password": PASSWORD, "next": "/"}).status_code == 303
    return client


def _casebook(web: Any, subject: str) -> str:
    page = web.get(f"/studies/{STUDY}/subjects/{subject}")
    assert page.status_code == 200, page.text
    return str(page.text)


def _prompted(html: str) -> set[str]:
    """The visits whose cells prompt for the visit date."""
    return set(re.findall(rf'/visits/([A-Z0-9.]+)">{PROMPT}<', html))


def _forms_at(platform: Platform, kinds: set[VisitType]) -> int:
    with platform.engine.connect() as connection:
        definition = handlers.rules_in_force(connection, STUDY).definition
    visits = definition.schedule.visits
    return sum(len(v.forms) for v in visits if v.type in kinds and not v.repeating and v.id != "DAY1")


def test_a_screen_failure_shows_every_later_visit_as_not_applicable(loaded: Platform, web: Any) -> None:
    subject = _screened(loaded)
    on_study = _casebook(web, subject)
    assert "DAY1" in _prompted(on_study) and "Not applicable" not in on_study
    assert "+ Add unscheduled visit" in on_study and "+ Add record AE.1" in on_study
    _run(loaded, handlers.screen_fail_subject, cmd.ScreenFailSubject(subject, "2026-02-09", "SBP above 179 mmHg"))

    html = _casebook(web, subject)
    assert _prompted(html) == set()
    day1_forms = 2  # IE and VS
    later = _forms_at(loaded, {VisitType.SCHEDULED, VisitType.END_OF_STUDY}) + day1_forms
    assert html.count(">Not applicable<") == later
    assert "+ Add unscheduled visit" not in html
    assert "+ Add record AE.1" in html  # adverse events after consent are reported for a screen failure too
    assert f"/subjects/{subject}/forms/SCREENING.IC" in html  # the screening forms stay open for corrections


def test_a_withdrawn_subject_shows_later_visits_as_not_applicable_and_keeps_the_end_of_study_visit(
    loaded: Platform, web: Any
) -> None:
    subject = _withdrawn(loaded)
    html = _casebook(web, subject)
    assert _prompted(html) == {"EOS"}
    assert html.count(">Not applicable<") == _forms_at(loaded, {VisitType.SCHEDULED})
    assert "+ Add unscheduled visit" not in html
    assert f'href="/studies/{STUDY}/subjects/{subject}/forms/AE.1"' in html  # adverse events are followed up
