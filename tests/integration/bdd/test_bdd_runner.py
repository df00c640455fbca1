"""How scenarios run: isolation, refusals, the story clock, determinism, defects reported and not raised."""

from __future__ import annotations

from pathlib import Path

from tests.integration.bdd.conftest import BACKGROUND, VITALS, StudyDir, vitals_feature
from trialstack.bdd.features import Step
from trialstack.bdd.library import default_library
from trialstack.bdd.registry import StepLibrary
from trialstack.bdd.results import ERROR, FAILED, PASSED, SKIPPED, RunResult
from trialstack.bdd.runner import prepare, run_specification
from trialstack.bdd.world import World
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file


def run(study: Path, *, seed: int = 201, library: StepLibrary | None = None) -> RunResult:
    version = study_version(load_study_file(study / "study.yaml"))
    return run_specification(prepare(version, study / "features", library), seed=seed)


def statuses(result: RunResult) -> list[list[str]]:
    return [[step.status for step in scenario.steps] for scenario in result.scenarios]


def test_each_scenario_starts_from_a_fresh_ledger(study_dir: StudyDir) -> None:
    scenario = '\n  Scenario: {n}\n    Given subject "0101-001" is screened at site "0101" on 2026-01-05\n'
    study = study_dir(two="Feature: f\n" + scenario.format(n="first") + scenario.format(n="second"))
    result = run(study)
    assert [r.status for r in result.scenarios] == [PASSED, PASSED]
    assert [r.ledger_events for r in result.scenarios] == [2, 2]


def test_the_same_seed_writes_the_same_ledgers_and_another_seed_does_not(study_dir: StudyDir) -> None:
    study = study_dir(vitals=vitals_feature(sbp="190", expected="fails"))
    first, again, other = run(study), run(study), run(study, seed=7)
    assert first.passed
    assert [r.ledger_head for r in first.scenarios] == [r.ledger_head for r in again.scenarios]
    assert [r.ledger_head for r in first.scenarios] != [r.ledger_head for r in other.scenarios]


def test_an_unchecked_refusal_fails_the_refused_step(study_dir: StudyDir) -> None:
    study = study_dir(
        refused="Feature: f\n\n"
        + BACKGROUND
        + "\n  Scenario: blocked temperature nobody checks\n"
        + '    When the coordinator enters TEMP 98.6 on the "Screening" vital signs\n'
        + "    Then no query is open\n"
    )
    (scenario,) = run(study).scenarios
    assert [s.status for s in scenario.steps] == [PASSED, PASSED, PASSED, PASSED, FAILED, SKIPPED]
    failure = scenario.failure
    assert failure is not None and failure.step.location.line == 13
    assert failure.message.startswith("the save of the Screening Vital Signs was refused, and no step checks")
    assert failure.actual == "refused (domain-rule-violation): Temperature must be 34.0 to 42.0 C; check the unit."


def test_a_refusal_in_the_last_step_fails_it_too(study_dir: StudyDir) -> None:
    study = study_dir(
        last="Feature: f\n\n" + BACKGROUND + "\n  Scenario: s\n"
        '    When the coordinator enters TEMP 98.6 on the "Screening" vital signs\n'
    )
    assert statuses(run(study)) == [[PASSED, PASSED, PASSED, PASSED, FAILED]]


def test_a_refused_given_fails_at_once_and_today_pins_the_clock(study_dir: StudyDir) -> None:
    study = study_dir(
        clock="Feature: f\n\n  Scenario: s\n    Given today is 2026-01-01\n"
        '    And subject "0101-001" is screened at site "0101" on 2026-01-05\n'
        "    Then the subject is in screening\n"
    )
    (scenario,) = run(study).scenarios
    assert [s.status for s in scenario.steps] == [PASSED, FAILED, SKIPPED]
    failure = scenario.failure
    assert failure is not None
    assert failure.message == (
        "screening at site 0101 was refused: screening date 2026-01-05 is in the future (today is 2026-01-01)"
    )


def test_time_follows_the_story_until_today_is_set(study_dir: StudyDir) -> None:
    study = study_dir(
        story="Feature: f\n\n"
        + BACKGROUND
        + "\n  Scenario: s\n"
        + '    When the coordinator saves the "Screening" vital signs with:\n'
        + VITALS.format(sbp="190")
        + '    And the "Week 2" visit took place on 2026-01-19\n'
        + '    Then query "VS-SBP-ELIG" is open on SYSBP\n'
    )
    (scenario,) = run(study).scenarios
    assert scenario.status == PASSED
    opened = [e for s in scenario.steps for e in s.events if e.event_type == "QueryOpened"]
    assert [e.payload.count('"opened_on":"2026-01-05"') for e in opened] == [1]
    recorded = [e for s in scenario.steps for e in s.events if e.event_type == "VisitDateRecorded"]
    assert recorded[-1].payload.count('"visit_date":"2026-01-19"') == 1


def test_roles_are_authorized_as_the_api_does(study_dir: StudyDir) -> None:
    study = study_dir(
        roles="Feature: f\n\n"
        + BACKGROUND
        + "\n  Scenario: s\n"
        + '    When the monitor enters PULSE 70 on the "Screening" vital signs\n'
        + '    Then the save is refused with "monitor may not data.enter in study HTN-201"\n'
    )
    assert run(study).passed


def test_a_defect_in_a_step_is_an_error_of_its_scenario(study_dir: StudyDir) -> None:
    library = StepLibrary()
    library.definitions = list(default_library().definitions)

    @library.step("the system breaks", example="When the system breaks", topic="Test")
    def breaks(world: World) -> None:
        """A step with a defect."""
        raise RuntimeError("boom")

    study = study_dir(
        crash="Feature: f\n\n  Scenario: s\n    When the system breaks\n    Then no query is open\n"
        "\n  Scenario: next\n    Given today is 2026-01-01\n"
    )
    result = run(study, library=library)
    assert statuses(result) == [[ERROR, SKIPPED], [PASSED]]
    failure = result.scenarios[0].failure
    assert failure is not None and failure.message == "RuntimeError: boom"
    assert isinstance(failure.step, Step)
