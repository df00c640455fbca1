"""Coverage: a rule counts as exercised only when a scenario saw it fail; a visit when it was entered."""

from __future__ import annotations

from trialstack.bdd.coverage import Observations, coverage
from trialstack.bdd.names import Names
from trialstack.capture.checks import CheckResult
from trialstack.protocol.definition import CheckAction


def result(check_id: str, outcome: bool | None) -> CheckResult:
    return CheckResult(check_id, "SCREENING.VS", "SYSBP", outcome, "", CheckAction.QUERY)


def test_a_check_is_covered_when_seen_failing_not_only_passing(names: Names) -> None:
    observed = Observations()
    observed.check(result("VS-SBP-ELIG", False))
    observed.check(result("VS-SBP-ELIG", True))
    observed.check(result("VS-DBP-LT-SBP", True))
    observed.check(result("VS-PP-PLAUSIBLE", None))
    report = coverage(names.definition, observed)
    lines = {line.id: line for line in report.edit_checks.lines}
    assert lines["VS-SBP-ELIG"].covered and lines["VS-SBP-ELIG"].seen == {"failed", "passed"}
    assert not lines["VS-DBP-LT-SBP"].covered and not lines["VS-PP-PLAUSIBLE"].covered
    assert report.edit_checks.covered == 1
    assert report.edit_checks.total == len(list(names.definition.all_edit_checks())) == 44


def test_range_generated_checks_are_counted(names: Names) -> None:
    ids = [line.id for line in coverage(names.definition, Observations()).edit_checks.lines]
    assert "VS-SYSBP-RANGE" in ids and "CM-CMDSTXT-RANGE" in ids


def test_visits_and_criteria(names: Names) -> None:
    observed = Observations()
    observed.visit("SCREENING")
    observed.criterion("IN02", False)
    observed.criterion("IN01", True)
    report = coverage(names.definition, observed)
    assert [line.id for line in report.visits.lines if line.covered] == ["SCREENING"]
    assert [line.id for line in report.criteria.lines if line.covered] == ["IN02"]
    assert report.criteria.percent == 10.0
    assert [section.name for section in report.below(50)] == ["edit checks", "visits", "eligibility criteria"]
    assert report.below(0) == []


def test_observations_merge() -> None:
    first, second = Observations(), Observations()
    first.check(result("A", True))
    second.check(result("A", False))
    second.visit("WEEK2")
    second.criterion("IN01", None)
    first.merge(second)
    assert first.checks == {"A": {"passed", "failed"}} and first.visits == {"WEEK2"}
    assert first.criteria == {"IN01": {"unknown"}}
