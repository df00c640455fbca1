"""Defects the specification found in other contexts, kept as regression tests once fixed.

A derived item re-derived by a save on another form (DM.AGE when the consent date changes) re-runs the checks
that read it on its own form.
"""

from __future__ import annotations

from tests.integration.bdd.conftest import StudyDir
from trialstack.bdd.runner import prepare, run_specification
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

AGE_AFTER_CONSENT = """\
Feature: Demographics
  Scenario: Age derived when consent is entered after the demographics is checked
    Given subject "0101-001" is screened at site "0101" on 2026-01-05
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the coordinator saves the "Screening" demographics with:
      | item    | value      |
      | BRTHDAT | 2010-03-01 |
      | SEX     | M          |
    When the coordinator saves the "Screening" "Informed Consent" form with:
      | item   | value      |
      | ICDAT  | 2026-01-05 |
      | ICVERS | 1.0        |
    Then AGE on the "Screening" demographics is 15
    And the check "DM-AGE-ELIG" fails
    And query "DM-AGE-ELIG" is open on BRTHDAT
"""


def test_a_derived_item_of_another_form_re_runs_the_checks_that_read_it(study_dir: StudyDir) -> None:
    study = study_dir(age=AGE_AFTER_CONSENT)
    version = study_version(load_study_file(study / "study.yaml"))
    result = run_specification(prepare(version, study / "features"))
    failure = result.scenarios[0].failure
    assert failure is None, f"{failure.message}: {failure.actual}" if failure else ""
