"""The `kris` section: enrolment plan per site (`from: YYYY-MM`), thresholds, the AE form; every mistake reported
with its place; hashes of studies without the section unchanged; `protocol diff` names a changed threshold."""

from __future__ import annotations

import json

import pytest

from tests.unit.protocol.conftest import DEMO_STUDY
from trialstack.protocol.definition import Direction, KriId, StudyDefinition
from trialstack.protocol.diff import ChangeKind, diff_definitions
from trialstack.protocol.version import definition_from_canonical_json, study_version
from trialstack.protocol.yaml_loader import check_study_yaml, load_study_yaml


def _with_kris(demo_text: str, kris: str) -> str:
    return demo_text[: demo_text.index("\nkris:")] + "\n" + kris


def _problems(text: str) -> list[str]:
    return [f"{p.pointer}: {p.message}" for p in check_study_yaml(text, base_dir=DEMO_STUDY.parent).problems]


def _load(text: str) -> StudyDefinition:
    return load_study_yaml(text, base_dir=DEMO_STUDY.parent)


@pytest.fixture(scope="module")
def demo() -> StudyDefinition:
    return _load(DEMO_STUDY.read_text(encoding="utf-8"))


def test_the_demo_declares_a_plan_per_site_and_thresholds(demo: StudyDefinition) -> None:
    kris = demo.kris
    assert kris is not None
    assert [(p.site, p.start, p.per_month, p.target) for p in kris.enrolment_plan] == [
        ("0101", "2026-01", 8, 24),
        ("0102", "2026-01", 8, 24),
    ]
    threshold = kris.threshold(KriId.QUERY_AGE_OVER_30)
    assert threshold is not None and threshold.direction is Direction.ABOVE and threshold.warn == 1
    assert kris.threshold(KriId.AE_RATE) is None
    assert kris.adverse_events.form == "AE" and kris.adverse_events.serious_item == "AESER"


def test_the_plan_keeps_its_from_key_in_the_canonical_json_and_reloads_to_the_same_hash(
    demo: StudyDefinition,
) -> None:
    version = study_version(demo)
    plan = json.loads(version.canonical_json)["kris"]["enrolment_plan"][0]
    assert plan == {"from": "2026-01", "per_month": 8, "site": "0101", "target": 24}
    assert study_version(definition_from_canonical_json(version.canonical_json)).hash == version.hash


def test_a_study_without_the_section_hashes_as_before(demo_text: str, minimal_text: str) -> None:
    without = load_study_yaml(minimal_text)
    assert without.kris is None and "kris" not in json.loads(study_version(without).canonical_json)


def test_every_mistake_in_the_section_is_reported_at_its_place(demo_text: str) -> None:
    text = _with_kris(
        demo_text,
        """kris:
  enrolment_plan:
    - {site: "0109", from: 2026-01, per_month: 8, target: 24}
    - {site: "0101", from: 2026-13, per_month: 8, target: 24}
    - {site: "0102", start: 2026-01, per_month: 8, target: 24}
  thresholds:
    - {kri: AE_RATE, warn: 1, direction: above}
    - {kri: OPEN_QUERIES, warn: 10, breach: 5, direction: above}
    - {kri: SDV_BACKLOG, direction: above}
    - {kri: MISSING_PAGES, warn: 3, direction: above}
    - {kri: MISSING_PAGES, warn: 4, direction: above}
    - {kri: NO_SUCH_KRI, warn: 1, direction: above}
  adverse_events: {form: AE, serious_item: SERIOUS}
""",
    )
    problems = _problems(text)
    expected = [
        "/kris/enrolment_plan/0/site: unknown site '0109'",
        "/kris/enrolment_plan/1/from: '2026-13'",
        "/kris/enrolment_plan/2/start: unknown key 'start'",
        "/kris/thresholds/0/kri: AE_RATE is judged by its funnel plot",
        "/kris/thresholds/1: breach 5 is below warn 10",
        "/kris/thresholds/2: the threshold of SDV_BACKLOG needs warn, breach or both",
        "/kris/thresholds/4/kri: MISSING_PAGES has two thresholds: keep one",
        "/kris/thresholds/5/kri: Input should be 'ENROLMENT_VS_PLAN'",
        "/kris/adverse_events/serious_item: form AE has no item 'SERIOUS'",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), (start, problems)


def test_below_thresholds_need_the_breach_under_the_warning_and_enrolment_needs_a_plan(demo_text: str) -> None:
    text = _with_kris(
        demo_text,
        """kris:
  thresholds:
    - {kri: ENROLMENT_VS_PLAN, warn: 50, breach: 80, direction: below}
  adverse_events: {form: DM}
""",
    )
    problems = _problems(text)
    assert any("breach 80 is above warn 50" in p for p in problems), problems
    text = _with_kris(demo_text, "kris:\n  thresholds:\n    - {kri: ENROLMENT_VS_PLAN, warn: 80, direction: below}\n")
    assert any("ENROLMENT_VS_PLAN is measured against enrolment_plan" in p for p in _problems(text))
    text = _with_kris(demo_text, "kris:\n  adverse_events: {form: DM}\n")
    assert _problems(text) == ["/kris/adverse_events/form: DM is not a log form: list it in schedule.log_forms"]


def test_the_diff_names_a_changed_threshold(demo_text: str, demo: StudyDefinition) -> None:
    changed = _load(
        demo_text.replace("{kri: SDV_BACKLOG, warn: 15, breach: 30", "{kri: SDV_BACKLOG, warn: 10, breach: 30")
    )
    (change,) = diff_definitions(demo, changed).of("kris")
    assert change.kind is ChangeKind.CHANGED and [f.field for f in change.fields] == ["thresholds"]
    removed = _load(demo_text[: demo_text.index("\nkris:")])
    assert [c.kind for c in diff_definitions(demo, removed).of("kris")] == [ChangeKind.REMOVED]
