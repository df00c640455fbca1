"""Bad specifications: errors with file and line and what to write instead; never a traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.integration.bdd.conftest import BACKGROUND, StudyDir
from trialstack.cli.bdd import app

runner = CliRunner()


def run(study: object, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", str(study), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_an_unknown_step_names_file_line_and_three_closest_steps(study_dir: StudyDir) -> None:
    study = study_dir(typo="Feature: f\n\n  Scenario: s\n    Given subject 0101-001 is screened at site 0101\n")
    code, out = run(study)
    assert code == 2
    assert 'features/typo.feature:4: unknown step "subject 0101-001 is screened at site 0101"' in out
    suggestions = out.split("closest known:")[1].strip().splitlines()
    assert len(suggestions) == 3
    assert suggestions[0].strip() == "subject {string} is screened at site {string} on {date}"


def test_a_gherkin_syntax_error_names_file_and_line(study_dir: StudyDir) -> None:
    study = study_dir(broken="Feature: f\n  Scenario: s\n    Given today is 2026-01-05\n  what is this\n")
    code, out = run(study)
    assert code == 2
    assert "features/broken.feature:4: Gherkin syntax error" in out


def test_unknown_visit_form_and_item_are_named(study_dir: StudyDir) -> None:
    study = study_dir(
        names="Feature: f\n\n"
        + BACKGROUND
        + "\n  Scenario: s\n"
        + '    When the "Week 3" visit took place on 2026-01-19\n'
        + '    And the coordinator enters SBP 150 on the "Week 2" vital sings\n'
        + '    And the coordinator enters SPB 150 on the "Week 2" vital signs\n'
    )
    code, out = run(study)
    assert code == 2
    assert 'features/names.feature:13: unknown visit "Week 3" in HTN-201' in out
    assert 'features/names.feature:14: unknown form "vital sings" in HTN-201 (closest: Vital Signs' in out
    assert 'features/names.feature:15: unknown item "SPB": no form of HTN-201 has it' in out


def test_an_item_of_another_form_is_an_error_of_its_scenario_not_a_crash(study_dir: StudyDir) -> None:
    study = study_dir(
        wrong="Feature: f\n\n"
        + BACKGROUND
        + "\n  Scenario: consent date on the vital signs\n"
        + '    When the coordinator saves the "Screening" vital signs with:\n'
        + "      | item  | value      |\n"
        + "      | ICDAT | 2026-01-05 |\n"
        + "    Then no query is open\n"
    )
    code, out = run(study)
    assert code == 1
    assert "! consent date on the vital signs" in out
    assert 'features/wrong.feature:13: unknown item "ICDAT" on Vital Signs (VS)' in out
    assert "1 in error" in out


def test_a_study_without_features_or_definition_is_a_clear_error(study_dir: StudyDir) -> None:
    study = study_dir()
    (study / "features").rmdir()
    code, out = run(study)
    assert code == 2 and "no features/ directory beside" in out
    code, out = run(study / "nowhere.yaml")
    assert code == 2 and "no study definition at" in out
