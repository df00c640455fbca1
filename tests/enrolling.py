"""An enrolled subject of the demo study, the way a site gets there: screening, consent on paper, the screening
forms, Day 1 with its vital signs and the eligibility confirmation, then enrolment (every criterion holds).

Tests of what follows enrolment (randomization, dispensing) start from here, through the real capture handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.consenting import consent_on_paper
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.ledger.envelope import Actor

STUDY = "HTN-201"
COORDINATOR = Actor("user:cora", "study_coordinator")


def _run(platform: Platform, handler: Callable[..., Any], *args: Any) -> Any:
    with platform.unit_of_work(COORDINATOR) as uow:
        result = handler(uow, STUDY, *args)
        uow.commit()
    return result


def _save(platform: Platform, subject: str, visit: str, form: str, values: dict[str, str]) -> None:
    inputs = {item: cmd.ItemInput(value) for item, value in values.items() if value}
    _run(platform, handlers.save_form, cmd.SaveForm(subject, FormKey(form, VisitKey(visit)), inputs))


def screened_subject(platform: Platform, site_id: str = "0101", on: str = "2026-01-05") -> str:
    """Screened, consented on paper, screening forms saved (eligible values), Day 1 dated: not yet enrolled."""
    outcome = _run(platform, handlers.screen_subject, cmd.ScreenSubject(site_id, on))
    subject = str(outcome.subject_id)
    consent_on_paper(platform, STUDY, subject, on)
    _run(platform, handlers.record_visit_date, cmd.RecordVisitDate(subject, VisitKey("SCREENING"), on))
    _save(platform, subject, "SCREENING", "IC", {"ICDAT": on, "ICVERS": "1.0"})
    demographics = {"BRTHDAT": "1970-03-01", "SEX": "M", "RACE": "WHITE", "ETHNIC": "NOT HISPANIC OR LATINO"}
    _save(platform, subject, "SCREENING", "DM", demographics)
    vitals = {"VSDAT": on, "SYSBP": "165", "DIABP": "95", "PULSE": "72", "WEIGHT": "80.5", "HEIGHT": "175"}
    _save(platform, subject, "SCREENING", "VS", vitals)
    labs = {"LBPERF": "Y", "LBDAT": on, "K": "4.4", "SODIUM": "140", "CREAT": "0.9", "ALT": "25", "GLUC": "95"}
    _save(platform, subject, "SCREENING", "LB", labs)
    _run(platform, handlers.record_visit_date, cmd.RecordVisitDate(subject, VisitKey("DAY1"), on))
    return subject


def enrolled_subject(platform: Platform, site_id: str = "0101", on: str = "2026-01-05", sbp: str | None = "150") -> str:
    """An enrolled subject whose Day 1 seated SBP is `sbp` (None: not recorded, so no stratum can be decided)."""
    subject = screened_subject(platform, site_id, on)
    day1 = {"VSDAT": on, "SYSBP": sbp or "", "DIABP": "92", "PULSE": "70", "WEIGHT": "80.1", "HEIGHT": "175"}
    _save(platform, subject, "DAY1", "VS", day1)
    _save(platform, subject, "DAY1", "IE", {"IEINC03": "Y", "IEEXC02": "N", "IEEXC04": "N", "IEYN": "Y"})
    _run(platform, handlers.enrol_subject, cmd.EnrolSubject(subject, on))
    return subject
