"""The step library, complete: importing the step modules registers their steps on `LIBRARY`."""

from __future__ import annotations

from trialstack.bdd import (
    steps_checks,
    steps_consent,
    steps_ecoa,
    steps_eligibility,
    steps_forms,
    steps_irt,
    steps_labs,
    steps_monitoring,
    steps_personal,
    steps_subjects,
)
from trialstack.bdd.registry import LIBRARY, StepLibrary

STEP_MODULES = (
    steps_subjects,
    steps_consent,
    steps_forms,
    steps_checks,
    steps_eligibility,
    steps_monitoring,
    steps_personal,
    steps_ecoa,
    steps_irt,
    steps_labs,
)
TOPICS = (
    steps_subjects.TIME,
    steps_subjects.SUBJECTS,
    steps_consent.CONSENT,
    steps_forms.ENTRY,
    steps_checks.CHECKS,
    steps_checks.QUERIES,
    steps_eligibility.ELIGIBILITY,
    steps_monitoring.MONITORING,
    steps_personal.PERSONAL,
    steps_ecoa.QUESTIONNAIRES,
    steps_irt.RANDOMIZATION,
    steps_irt.SUPPLY,
    steps_labs.LABORATORY,
    steps_forms.REFUSALS,
)


def default_library() -> StepLibrary:
    return LIBRARY
