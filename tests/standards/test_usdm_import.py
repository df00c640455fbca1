"""The CDISC Pilot (LZZT) in USDM v4: visits, days and windows, forms per visit, arms, epochs, the report."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from tests.standards.conftest import lzzt_usdm
from tests.standards.usdm_minimal import minimal_usdm
from trialstack.protocol.definition import CriterionKind, ItemType, StudyDefinition, StudyPhase, VisitType
from trialstack.protocol.problems import StudyDefinitionError
from trialstack.protocol.validation import validate_definition
from trialstack.standards.usdm_import import ImportResult, import_usdm, import_usdm_file, usdm_mapping_report


@pytest.fixture(scope="module")
def lzzt() -> ImportResult:
    return import_usdm_file(lzzt_usdm())


def test_the_lzzt_study_and_its_design(lzzt: ImportResult) -> None:
    definition = lzzt.definition
    study = definition.study
    assert lzzt.format == "usdm-4"
    assert (study.id, study.phase, study.protocol_version) == ("H2Q-MC-LZZT", StudyPhase.PHASE_2, "2")
    assert study.name.startswith("Safety and Efficacy of the Xanomeline Transdermal Therapeutic System")
    assert [(arm.id, arm.name) for arm in definition.arms] == [
        ("PLACEBO", "Placebo"),
        ("XANOMELINE_LOW_DOSE", "Xanomeline Low Dose"),
        ("XANOMELINE_HIGH_DOSE", "Xanomeline High Dose"),
    ]
    assert [epoch.id for epoch in definition.epochs] == [
        "SCREENING",
        "TREATMENT_1",
        "TREATMENT_2",
        "TREATMENT_3",
        "FOLLOW_UP",
    ]
    assert [(site.id, site.name, site.country) for site in definition.sites] == [("SITE_1", "Site One", "GB")]
    assert validate_definition(definition) == []


def test_the_lzzt_visits_have_the_protocol_days_and_windows(lzzt: ImportResult) -> None:
    schedule = lzzt.definition.schedule
    assert schedule.anchor == "E3"  # the "Fixed Reference" timing: the dosing visit
    scheduled = [
        (v.id, v.name, v.type, v.day, v.window.early, v.window.late, v.epoch)
        for v in schedule.visits
        if v.type is not VisitType.UNSCHEDULED
    ]
    assert scheduled == [
        ("E1", "Screening 1", VisitType.SCREENING, -14, 0, 0, "SCREENING"),  # TIM1: P2W before dosing, no window
        ("E2", "Screening 2", VisitType.SCREENING, -2, 0, 0, "SCREENING"),  # TIM2: P2D before, window PT4H/PT0H
        ("E3", "Baseline", VisitType.SCHEDULED, 1, 0, 0, "TREATMENT_1"),
        ("E4", "Week 2", VisitType.SCHEDULED, 15, 3, 3, "TREATMENT_1"),
        ("E5", "Week 4", VisitType.SCHEDULED, 29, 3, 3, "TREATMENT_2"),
        ("E7", "Week 6", VisitType.SCHEDULED, 43, 3, 3, "TREATMENT_2"),
        ("E8", "Week 8", VisitType.SCHEDULED, 57, 3, 3, "TREATMENT_2"),
        ("E9", "Week 12", VisitType.SCHEDULED, 85, 4, 4, "TREATMENT_2"),
        ("E10", "Week 16", VisitType.SCHEDULED, 113, 4, 4, "TREATMENT_2"),
        ("E11", "Week 20", VisitType.SCHEDULED, 141, 4, 4, "TREATMENT_2"),
        ("E12", "Week 24", VisitType.SCHEDULED, 169, 4, 4, "TREATMENT_3"),
        ("E13", "Week 26", VisitType.SCHEDULED, 183, 3, 3, "FOLLOW_UP"),
    ]
    conditional = [(v.id, v.repeating) for v in schedule.visits if v.type is VisitType.UNSCHEDULED]
    assert conditional == [("ADVERSE_EVENT_TIMELINE", True), ("EARLY_TERMINATION_TIMELINE", True)]


def test_activities_with_biomedical_concepts_are_forms_due_where_the_schedule_says(lzzt: ImportResult) -> None:
    definition = lzzt.definition
    due = {visit.id: visit.forms for visit in definition.schedule.visits}
    assert due["E1"] == (
        "DEMOGRAPHICS",
        "VITAL_SIGNS_TEMPERATURE",
        "VITAL_SIGNS_SUPINE",  # the vital-sign activity's sub-timeline: supine, then standing
        "VITAL_SIGNS_STANDING",
        "CHEMISTRY",
        "HEMOGLOBIN_A1C",
    )
    assert due["E3"] == ("VITAL_SIGNS_TEMPERATURE", "VITAL_SIGNS_SUPINE", "VITAL_SIGNS_STANDING", "IE")  # + eligibility
    assert all("CHEMISTRY" in due[visit] for visit in ("E4", "E5", "E7", "E8", "E9", "E10", "E11", "E12", "E13"))
    assert [visit for visit, forms in due.items() if "HEMOGLOBIN_A1C" in forms] == ["E1"]
    assert due["ADVERSE_EVENT_TIMELINE"] == ("ADVERSE_EVENTS",)
    demographics = definition.form("DEMOGRAPHICS")
    assert demographics is not None
    sex = demographics.item("SEX")
    assert sex is not None and (sex.type, sex.codelist, sex.required) == (ItemType.CHOICE, "SEX", True)
    codes = definition.codelist("SEX")
    assert codes is not None and [(c.code, c.decode) for c in codes.items] == [("C20197", "Male"), ("C16576", "Female")]
    temperature = definition.form("VITAL_SIGNS_TEMPERATURE").item("TEMPERATURE_VSORRES")  # type: ignore[union-attr]
    assert temperature is not None and temperature.type is ItemType.DECIMAL


def test_eligibility_criteria_become_a_confirmation_form_due_at_the_anchor(lzzt: ImportResult) -> None:
    definition = lzzt.definition
    eligibility = definition.eligibility
    assert eligibility is not None and eligibility.form == "IE"
    assert len(eligibility.criteria) == 31
    first, last = eligibility.criteria[0], eligibility.criteria[-1]
    assert (first.id, first.kind, first.expression) == ("IN01", CriterionKind.INCLUSION, 'IN01 == "Y"')
    assert first.text == "Males and postmenopausal females at least 50 years of age."
    assert (last.kind, last.expression) == (CriterionKind.EXCLUSION, f'{last.id} == "N"')
    form = definition.form("IE")
    assert form is not None and [item.id for item in form.items] == [c.id for c in eligibility.criteria]
    assert {(item.type, item.codelist, item.required) for item in form.items} == {(ItemType.CHOICE, "NY", True)}
    assert form.items[0].label == first.text
    codelist = definition.codelist("NY")
    assert codelist is not None and codelist.codes() == ("Y", "N")
    assert [visit.id for visit in definition.schedule.visits_with_form("IE")] == [definition.schedule.anchor] == ["E3"]


def test_the_mapping_report_maps_criteria_and_says_what_was_not_mapped(lzzt: ImportResult) -> None:
    text = usdm_mapping_report(lzzt_usdm())
    assert text.startswith(f"Mapping report for {lzzt_usdm()} (USDM 4.0.0)")
    criteria = [entry for entry in lzzt.report.mapped if "/eligibilityCriteria/" in entry.source]
    assert len(criteria) == 31 and not [e for e in lzzt.report.unmapped if "/eligibilityCriteria/" in e.source]
    assert criteria[0].target == 'eligibility criterion IN01: IN01 == "Y"'
    assert criteria[0].detail == "inclusion criterion 'Males and postmenopausal females at least 50 years of age.'"
    assert "eligibility confirmation form IE generated: one Y/N item per criterion" in text
    assert "due at the anchor visit E3 (study day 1)" in text
    assert "activity 'MMSE' has no biomedical concepts: no form" in text
    assert "instance WK8N puts this encounter at day 71; WK8 at day 57 is kept" in text
    assert "PT4H is not a whole number of days" in text
    assert "## Not mapped" in text and "objectives has no place in a StudyDefinition" in text


def _load(document: dict[str, object], tmp_path: Path) -> StudyDefinition:
    path = tmp_path / "study.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return import_usdm_file(path).definition


def test_any_usdm_4x_version_is_read(tmp_path: Path) -> None:
    document = minimal_usdm()
    document["usdmVersion"] = "4.1.0"
    definition = _load(document, tmp_path)
    assert [(v.id, v.day, v.window.early, v.window.late) for v in definition.schedule.visits] == [
        ("E1", 1, 0, 0),
        ("E2", 15, 3, 3),
    ]
    assert definition.study.phase is StudyPhase.PHASE_3


@pytest.mark.parametrize("version", ["3.0.0", "5.0", "four"])
def test_other_usdm_versions_are_refused_at_the_version(version: str) -> None:
    document = minimal_usdm()
    document["usdmVersion"] = version
    with pytest.raises(StudyDefinitionError) as raised:
        import_usdm(json.dumps(document), "study.json")
    (problem,) = raised.value.problems
    assert problem.pointer == "/usdmVersion" and f"USDM {version} is not supported" in problem.message


def test_a_negative_value_and_a_before_timing_agree(tmp_path: Path) -> None:
    document = minimal_usdm()
    timings = document["study"]["versions"][0]["studyDesigns"][0]["scheduleTimelines"][0]["timings"]
    timings[1]["type"] = {"id": "Code_9", "code": "C201357", "decode": "Before", "instanceType": "Code"}
    timings[1]["value"] = "-P2W"
    timings[1]["windowLower"] = timings[1]["windowUpper"] = "P3D"
    definition = _load(document, tmp_path)
    visit = definition.visit("E2")
    assert visit is not None and (visit.type, visit.day, visit.window.early, visit.window.late) == (
        VisitType.SCREENING,
        -14,
        3,
        3,
    )


def test_a_visit_outside_its_window_is_flagged_by_the_schedule(lzzt: ImportResult) -> None:
    week2 = lzzt.definition.visit("E4")
    assert week2 is not None
    baseline = date(2026, 3, 2)
    assert week2.is_in_window(baseline, date(2026, 3, 16)) is True  # day 15
    assert week2.is_in_window(baseline, date(2026, 3, 19)) is True  # day 18, the last day of the window
    assert week2.is_in_window(baseline, date(2026, 3, 20)) is False  # day 19


def _criterion(n: int, name: str, code: str, decode: str, label: str | None = None) -> dict[str, object]:
    category = {"id": f"Code_C{n}", "code": code, "decode": decode, "instanceType": "Code"}
    item = {"criterionItemId": f"EligibilityCriterionItem_{n}"} if label is None else {"label": label}
    return {"id": f"EligibilityCriterion_{n}", "name": name, "category": category, "identifier": str(n), **item,
            "instanceType": "EligibilityCriterion"}  # fmt: skip


def test_criteria_known_by_term_or_title_are_confirmed_and_others_reported(tmp_path: Path) -> None:
    document = minimal_usdm()
    version = document["study"]["versions"][0]
    design = version["studyDesigns"][0]
    design["activities"][0]["name"] = "IE"  # the generated form must not take an id already in use
    version["eligibilityCriterionItems"] = [
        {"id": "EligibilityCriterionItem_1", "name": "ADULT", "text": "<p>Aged 18 or over</p>",
         "instanceType": "EligibilityCriterionItem"}
    ]  # fmt: skip
    design["eligibilityCriteria"] = [
        _criterion(1, "Adult", "C25532", "Inclusion Criteria"),
        _criterion(2, "Pregnant", "X-LOCAL", "EXCLUSION CRITERIA", label="Pregnant or breastfeeding"),
        _criterion(3, "Weird", "X-OTHER", "Other", label="Something else"),
    ]
    path = tmp_path / "study.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = import_usdm_file(path)
    eligibility = result.definition.eligibility
    assert eligibility is not None and eligibility.form == "IE_2"
    assert [(c.id, c.kind, c.text, c.expression) for c in eligibility.criteria] == [
        ("ADULT", CriterionKind.INCLUSION, "Aged 18 or over", 'ADULT == "Y"'),
        ("PREGNANT", CriterionKind.EXCLUSION, "Pregnant or breastfeeding", 'PREGNANT == "N"'),
    ]
    assert "criterion Weird: category 'Other' is neither inclusion nor exclusion" in "\n".join(result.warnings)
    assert [v.forms for v in result.definition.schedule.visits] == [("IE", "IE_2"), ("IE",)]  # E1 is the anchor
