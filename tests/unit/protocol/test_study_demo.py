"""The demo study (HTN-201) is a complete, valid protocol: the reference every other test leans on."""

from __future__ import annotations

from pathlib import Path

from trialstack.protocol.definition import CheckAction, CriterionKind, StudyDefinition, VisitType
from trialstack.standards.loader import check_study_file, load_study_file

DEMO_STUDY = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"


def test_demo_validates_with_zero_problems() -> None:
    check = check_study_file(DEMO_STUDY)
    assert [str(problem) for problem in check.problems] == []
    assert isinstance(check.definition, StudyDefinition)


def test_demo_is_a_randomized_double_blind_hypertension_study() -> None:
    demo = load_study_file(DEMO_STUDY)
    assert demo.study.id == "HTN-201"
    assert [site.id for site in demo.sites] == ["0101", "0102"]
    assert demo.randomization is not None
    assert demo.randomization.ratio == {"ZEL": 1, "PBO": 1}
    assert demo.randomization.strata.by_site
    assert [level.code for level in demo.randomization.strata.factors[0].levels] == ["LT160", "GE160"]
    assert demo.blinding is not None and demo.blinding.level == "double_blind"
    assert [(doc.id, [v.version for v in doc.versions], doc.required_before) for doc in demo.consent] == [
        ("ICF", ["1.0"], "SCREENING")
    ]
    icf = demo.consent[0].versions[0]
    assert [text.language for text in icf.texts] == ["en", "es"]
    assert [part.id for part in icf.optional_parts] == ["BIOBANK"]


def test_demo_schedule_matches_the_protocol() -> None:
    schedule = load_study_file(DEMO_STUDY).schedule
    assert schedule.anchor == "DAY1"
    windows = {visit.id: visit.window_days() for visit in schedule.visits}
    assert windows == {
        "SCREENING": (-28, -1),
        "DAY1": (1, 1),
        "WEEK2": (12, 18),
        "WEEK4": (26, 32),
        "WEEK8": (52, 62),
        "WEEK12": (78, 92),
        "UNSCHED": None,
        "EOS": None,
    }
    unscheduled = schedule.visit("UNSCHED")
    assert unscheduled is not None and unscheduled.repeating and unscheduled.type is VisitType.UNSCHEDULED
    assert schedule.log_forms == ("AE", "CM")


def test_demo_has_the_forms_and_checks_of_a_real_crf() -> None:
    demo = load_study_file(DEMO_STUDY)
    assert [form.id for form in demo.forms] == ["IC", "DM", "IE", "VS", "LB", "AE", "CM", "DS"]
    vital_signs = demo.form("VS")
    assert vital_signs is not None
    assert {item.id: item.unit for item in vital_signs.items if item.unit} == {
        "SYSBP": "mmHg",
        "DIABP": "mmHg",
        "PULSE": "beats/min",
        "WEIGHT": "kg",
        "HEIGHT": "cm",
        "TEMP": "C",
        "BMI": "kg/m2",
    }
    adverse_events = demo.form("AE")
    assert adverse_events is not None and adverse_events.repeating
    assert len(demo.edit_checks) >= 25
    assert {check.action for check in demo.edit_checks} == {CheckAction.QUERY, CheckAction.BLOCK}
    derived_ranges = [check.id for check in demo.all_edit_checks()][len(demo.edit_checks) :]
    assert "VS-SYSBP-RANGE" in derived_ranges
    assert demo.eligibility is not None
    kinds = {criterion.kind for criterion in demo.eligibility.criteria}
    assert kinds == {CriterionKind.INCLUSION, CriterionKind.EXCLUSION}
