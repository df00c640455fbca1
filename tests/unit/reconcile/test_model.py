"""Reconciliation decisions, pure: each check against the demo study's schedule, labs and consent sections."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from functools import cache
from types import MappingProxyType

import pytest

from tests.conftest import REPO_ROOT
from trialstack.protocol.definition import StudyDefinition
from trialstack.reconcile import events as ev
from trialstack.reconcile.checks import (
    CentralResult,
    ConsentRecord,
    Discrepancy,
    LocalValue,
    SubjectFacts,
    discrepancy_id,
)
from trialstack.reconcile.events import Addressee, DiscrepancyKind
from trialstack.reconcile.model import SubjectLabs, decide, decide_missing
from trialstack.standards.loader import load_study_file

SUBJECT = "0101-001"
VERSION = "v1"
CONSENTED = MappingProxyType({"ICF": ConsentRecord(signed_on="2026-01-02")})
# Day 1 on 2026-01-05: Week 4 (day 29, ±3 days) is in window from 2026-01-30 to 2026-02-05.
VISITS = MappingProxyType({"SCREENING": "2026-01-02", "DAY1": "2026-01-05", "WEEK4": "2026-02-02"})
FACTS = SubjectFacts(SUBJECT, "0101", "enrolled", None, VISITS, CONSENTED)


@cache
def demo() -> StudyDefinition:
    return load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")


def result(
    visit: str = "WEEK4", collected: str | None = "2026-02-02", value: str = "4.4", **changes: object
) -> CentralResult:
    base = CentralResult(
        f"R-{visit}-K", SUBJECT, "0101", visit, "K", "CENTRAL", value, "mmol/L", True,
        f"{collected}T08:30:00" if collected else None, "2026-02-04",
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def local(value: str, visit: str = "WEEK4", unit: str | None = None) -> dict[tuple[str, str], LocalValue]:
    return {(f"{visit}.LB", "K"): LocalValue(f"{visit}.LB", "K", value, unit)}


def subject(
    *results: CentralResult,
    facts: SubjectFacts | None = FACTS,
    local_values: dict[tuple[str, str], LocalValue] | None = None,
    open_: dict[str, Discrepancy] | None = None,
) -> SubjectLabs:
    return SubjectLabs(SUBJECT, facts, results, MappingProxyType(local_values or {}), MappingProxyType(open_ or {}))


def raised(decided: list[ev.DiscrepancyFields]) -> list[ev.ReconciliationDiscrepancyFound]:
    return [e for e in decided if isinstance(e, ev.ReconciliationDiscrepancyFound)]


def as_open(found: ev.DiscrepancyFields) -> Discrepancy:
    return Discrepancy(
        found.discrepancy_id, found.kind, found.subject_id, found.site_id, found.visit, found.test, found.form,
        found.item, found.detail, found.addressed_to, tuple(found.sources),
    )  # fmt: skip


def test_a_sample_in_window_and_agreeing_with_the_local_value_raises_nothing() -> None:
    assert decide(subject(result(), local_values=local("4.6")), demo(), VERSION) == []


def test_a_sample_collected_outside_the_visit_window_is_raised_for_the_site_on_the_collection_date() -> None:
    (found,) = raised(decide(subject(result(collected="2026-02-20")), demo(), VERSION))
    assert found.kind is DiscrepancyKind.SAMPLE_OUT_OF_WINDOW
    assert found.discrepancy_id == discrepancy_id(DiscrepancyKind.SAMPLE_OUT_OF_WINDOW, SUBJECT, "WEEK4", "K")
    assert (found.form, found.item, found.addressed_to) == ("WEEK4.LB", "LBDAT", Addressee.STUDY_COORDINATOR)
    assert "2026-02-20" in found.detail and "2026-01-30 to 2026-02-05" in found.detail
    assert "2026-02-02" in found.detail


def test_a_sample_taken_days_before_a_late_visit_counts_for_it() -> None:
    late = SubjectFacts(SUBJECT, "0101", "enrolled", None, MappingProxyType({**VISITS, "WEEK4": "2026-02-10"}))
    late = replace(late, consents=CONSENTED)
    assert decide(subject(result(collected="2026-02-07"), facts=late), demo(), VERSION) == []
    (found,) = raised(decide(subject(result(collected="2026-02-06"), facts=late), demo(), VERSION))
    assert found.kind is DiscrepancyKind.SAMPLE_OUT_OF_WINDOW


def test_the_window_is_undecided_while_the_anchor_visit_has_no_date() -> None:
    screening_only = replace(FACTS, visit_dates=MappingProxyType({"SCREENING": "2026-01-02"}))
    assert decide(subject(result(visit="WEEK4", collected="2026-03-30"), facts=screening_only), demo(), VERSION) == []


@pytest.mark.parametrize(("local_value", "mismatch"), [("4.8", False), ("4.9", True), ("3.9", True), ("4.0", False)])
def test_a_local_value_differing_by_more_than_the_tolerance_is_a_mismatch(local_value: str, mismatch: bool) -> None:
    found = raised(decide(subject(result(), local_values=local(local_value)), demo(), VERSION))
    assert [f.kind for f in found] == ([DiscrepancyKind.LOCAL_CENTRAL_MISMATCH] if mismatch else [])
    if mismatch:
        assert (found[0].form, found[0].item) == ("WEEK4.LB", "K")
        assert local_value in found[0].detail and "4.4 mmol/L" in found[0].detail
        assert found[0].sources == ["lab:CENTRAL/R-WEEK4-K", "edc:WEEK4.LB.K"]


def test_local_values_in_another_unit_are_converted_before_they_are_compared() -> None:
    assert decide(subject(result(), local_values=local("4.4", unit="mEq/L")), demo(), VERSION) == []
    assert raised(decide(subject(result(), local_values=local("9.9", unit="mEq/L")), demo(), VERSION)) != []


def test_local_values_in_a_unit_that_does_not_convert_are_not_compared() -> None:
    assert decide(subject(result(), local_values=local("9.9", unit="g/dL")), demo(), VERSION) == []


def test_results_of_a_laboratory_that_is_not_central_are_not_reconciled() -> None:
    assert decide(subject(result(source="LOCALLAB"), local_values=local("9.9")), demo(), VERSION) != []
    central_only = demo().model_copy(deep=True)
    assert central_only.labs is not None
    sources = (
        *central_only.labs.sources,
        central_only.labs.sources[0].model_copy(update={"id": "SITE", "central": False}),
    )
    not_central = central_only.model_copy(update={"labs": central_only.labs.model_copy(update={"sources": sources})})
    assert decide(subject(result(source="SITE"), local_values=local("9.9")), not_central, VERSION) == []


def test_an_open_mismatch_resolves_when_the_values_agree_and_is_not_raised_twice() -> None:
    (found,) = raised(decide(subject(result(), local_values=local("5.5")), demo(), VERSION))
    still = subject(result(), local_values=local("5.6"), open_={found.discrepancy_id: as_open(found)})
    assert decide(still, demo(), VERSION) == []
    corrected = subject(result(), local_values=local("4.5"), open_={found.discrepancy_id: as_open(found)})
    (resolved,) = decide(corrected, demo(), VERSION)
    assert isinstance(resolved, ev.ReconciliationDiscrepancyResolved)
    assert resolved.discrepancy_id == found.discrepancy_id


def test_a_later_result_for_the_same_visit_and_test_supersedes_the_earlier() -> None:
    repeat = result(value="5.5", result_id="R-REPEAT")
    assert [f.kind for f in raised(decide(subject(result(), repeat, local_values=local("4.4")), demo(), VERSION))] == [
        DiscrepancyKind.LOCAL_CENTRAL_MISMATCH
    ]


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (replace(FACTS, consents=MappingProxyType({})), "has no signed consent to ICF on record"),
        (None, "has no signed consent to ICF on record"),
        (replace(FACTS, consents=MappingProxyType({"ICF": ConsentRecord("2026-02-03")})), "only on 2026-02-03"),
        (replace(FACTS, consents=MappingProxyType({"ICF": ConsentRecord("2026-01-02", "2026-01-20")})),
         "withdrew consent to ICF on 2026-01-20"),
        (replace(FACTS, status="withdrawn", ended_on="2026-01-25"), "withdrew from the study on 2026-01-25"),
    ],
)  # fmt: skip
def test_a_sample_from_a_subject_without_consent_or_withdrawn_goes_to_the_data_manager(
    facts: SubjectFacts | None, reason: str
) -> None:
    found = [f for f in raised(decide(subject(result(), facts=facts), demo(), VERSION))
             if f.kind is DiscrepancyKind.SUBJECT_NOT_ELIGIBLE_FOR_SAMPLES]  # fmt: skip
    assert len(found) == 1
    assert found[0].addressed_to is Addressee.DATA_MANAGER
    assert reason in found[0].detail and "2026-02-02" in found[0].detail


def test_a_sample_collected_on_the_day_of_withdrawal_or_before_it_is_eligible() -> None:
    withdrawn = replace(FACTS, status="withdrawn", ended_on="2026-02-02")
    assert decide(subject(result(), facts=withdrawn), demo(), VERSION) == []


def test_a_sample_without_a_collection_date_is_judged_on_the_day_it_arrived() -> None:
    withdrawn = replace(FACTS, status="withdrawn", ended_on="2026-02-03")
    (found,) = raised(decide(subject(result(collected=None), facts=withdrawn), demo(), VERSION))
    assert found.kind is DiscrepancyKind.SUBJECT_NOT_ELIGIBLE_FOR_SAMPLES and "2026-02-04" in found.detail


@pytest.mark.parametrize(("today", "missing"), [(date(2026, 2, 9), False), (date(2026, 2, 10), True)])
def test_an_expected_sample_is_missing_once_missing_after_days_have_passed(today: date, missing: bool) -> None:
    found = {f.visit: f for f in raised(decide_missing(subject(), demo(), VERSION, today))}
    assert set(found) == ({"SCREENING", "WEEK4"} if missing else {"SCREENING"})
    if missing:
        week4 = found["WEEK4"]
        assert week4.discrepancy_id == "RC-MISSING/0101-001/WEEK4"
        assert (week4.form, week4.item, week4.test) == ("WEEK4.LB", "LBDAT", None)
        assert "2026-02-02" in week4.detail and "8 days" in week4.detail


def test_a_missing_sample_resolves_when_it_arrives_and_only_then() -> None:
    screening = result(visit="SCREENING", collected="2026-01-02")
    (found,) = raised(decide_missing(subject(screening), demo(), VERSION, date(2026, 3, 1)))
    waiting = {found.discrepancy_id: as_open(found)}
    assert decide(subject(screening, open_=waiting), demo(), VERSION) == []
    (resolved,) = decide(subject(screening, result(), open_=waiting), demo(), VERSION)
    assert isinstance(resolved, ev.ReconciliationDiscrepancyResolved)
    assert resolved.kind is DiscrepancyKind.SAMPLE_MISSING and resolved.visit == "WEEK4"
    assert decide_missing(subject(screening, open_=waiting), demo(), VERSION, date(2026, 3, 1)) == []
    (swept,) = decide_missing(subject(screening, result(), open_=waiting), demo(), VERSION, date(2026, 3, 1))
    assert isinstance(swept, ev.ReconciliationDiscrepancyResolved)


def test_screen_failures_have_no_missing_samples() -> None:
    failed = replace(FACTS, status="screen_failed", ended_on="2026-01-03")
    assert decide_missing(subject(facts=failed), demo(), VERSION, date(2026, 3, 1)) == []
