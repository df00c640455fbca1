"""`trialstack bdd coverage`: what a specification exercises, what it leaves untested, and --fail-under."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.integration.bdd.conftest import StudyDir, vitals_feature
from trialstack.cli.bdd import app

runner = CliRunner()


def test_coverage_lists_what_is_not_exercised(study_dir: StudyDir) -> None:
    study = study_dir(vitals=vitals_feature(sbp="190", expected="fails"))
    result = runner.invoke(app, ["coverage", str(study)])
    assert result.exit_code == 0, result.output
    assert "edit checks: 1 of 44 (2.3%)" in result.stdout
    assert "not exercised: VS-DBP-LT-SBP  Diastolic blood pressure is not lower than systolic" in result.stdout
    assert "not exercised: VS-SBP-ELIG" not in result.stdout
    assert "visits: 1 of 8 (12.5%)" in result.stdout and "not exercised: WEEK2  Week 2" in result.stdout
    assert "eligibility criteria: 0 of 10 (0.0%)" in result.stdout


def test_fail_under_exits_1_naming_the_sections_below_the_bar(study_dir: StudyDir) -> None:
    study = study_dir(vitals=vitals_feature(sbp="190", expected="fails"))
    result = runner.invoke(app, ["coverage", str(study), "--fail-under", "10"])
    assert result.exit_code == 1
    assert "coverage below 10%: edit checks 2.3%, eligibility criteria 0.0%" in result.output


def test_coverage_of_a_failing_specification_is_not_evidence(study_dir: StudyDir) -> None:
    study = study_dir(vitals=vitals_feature(sbp="150", expected="fails"))
    result = runner.invoke(app, ["coverage", str(study)])
    assert result.exit_code == 1
    assert "1 scenarios fail" in result.output and "these figures come from a failing run" in result.output
