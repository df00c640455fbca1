"""ODM 1.3.2 and 2.0 study metadata imported from the CDISC and odmlib examples: real values asserted."""

from __future__ import annotations

import pytest

from tests.standards.conftest import odm_example, odmlib
from trialstack.protocol.definition import CheckAction, ItemType, VisitType
from trialstack.protocol.problems import StudyDefinitionError
from trialstack.protocol.validation import validate_definition
from trialstack.standards.odm_import import import_odm, import_odm_file
from trialstack.standards.odm_parse import read_meta
from trialstack.standards.odm_timing import choose_anchor, resolve
from trialstack.standards.odm_xsd import parse_odm

pytestmark = pytest.mark.usefixtures("odm_xsds")
DAVE = "MetaData_Dave_1_3_2_new_2006_01_26_extra_languages.xml"


def test_the_multi_language_cdisc_example_imports_in_english() -> None:
    result = import_odm_file(odm_example(DAVE))
    definition = result.definition
    assert result.format == "odm-1.3.2"
    assert (definition.study.id, definition.study.name, definition.study.protocol_version) == (
        "CES",
        "CDISC Example Study",
        "CES_MDV_V1",
    )
    baseline = definition.form("F_BASELINE")
    assert baseline is not None
    sex = baseline.item("I_SEX")
    assert sex is not None and (sex.label, sex.type, sex.codelist, sex.required) == (
        "Sex",
        ItemType.CHOICE,
        "CL_SEX",
        True,
    )
    codelist = definition.codelist("CL_SEX")
    assert codelist is not None and [(i.code, i.decode) for i in codelist.items] == [("M", "Male"), ("F", "Female")]
    sysbp = baseline.item("I_SYSBP")
    assert sysbp is not None and (sysbp.unit, sysbp.max_digits) == ("mm Hg", 3)
    rbc = definition.form("F_LAB").item("I_LB_RBC")  # type: ignore[union-attr]
    assert rbc is not None and (rbc.type, rbc.max_digits, rbc.fraction_digits) == (ItemType.DECIMAL, 8, 3)
    assert validate_definition(definition) == []


def test_range_checks_become_edit_checks_with_soft_and_hard_actions() -> None:
    definition = import_odm_file(odm_example(DAVE)).definition
    checks = {check.id: check for check in definition.edit_checks if check.item == "I_LB_RBC"}
    assert [(c.expression, c.action) for c in checks.values()] == [
        ("I_LB_RBC <= 8.0", CheckAction.BLOCK),
        ("I_LB_RBC >= 2.0", CheckAction.BLOCK),
        ("I_LB_RBC <= 6.5", CheckAction.QUERY),
        ("I_LB_RBC >= 4.0", CheckAction.QUERY),
    ]
    assert list(checks) == [f"F_LAB-I_LB_RBC-RC{n}" for n in range(1, 5)]
    assert checks["F_LAB-I_LB_RBC-RC1"].message == "The value should be between 2.0 and 8.0"
    height = [check.expression for check in definition.edit_checks if check.id.startswith("F_BASELINE-I_HEIGHT")]
    assert height == ["I_HEIGHT < 90"]  # the check in cm does not apply to values collected in inches


def test_xpath_conditions_become_show_if_and_the_untranslatable_are_reported() -> None:
    result = import_odm_file(odm_example(DAVE))
    baseline = result.definition.form("F_BASELINE")
    adverse = result.definition.form("F_AE")
    assert baseline is not None and adverse is not None
    assert baseline.item("I_DIZZY").show_if == "not (I_DIABP > 90)"  # type: ignore[union-attr]
    assert baseline.item("I_NR_CIGARETTES").show_if == "not (I_SMOKING == false)"  # type: ignore[union-attr]
    stop = adverse.item("I_AE_STOP")
    assert stop is not None and stop.show_if == '(not (I_AE_OCCURRED == "0")) and (not (I_AE_CONTINUES == "1"))'
    warnings = "\n".join(result.warnings)
    assert "METH.001" in warnings and "'MyScriptingLanguage1' is not translated" in warnings
    assert "I_DIABP is entered, not derived" in warnings
    assert "COND.FORMUSE.SMOKING_COMPLAINTS on a whole form is not mapped" in warnings
    assert "COND.SEX.MALE']: not mapped: ConditionDef not referenced" in warnings


def test_untimed_odm_132_visits_keep_their_order_and_the_report_says_so() -> None:
    result = import_odm_file(odm_example(DAVE))
    schedule = result.definition.schedule
    assert schedule.anchor == "BASELINE"
    visits = [(v.id, v.type, v.day, v.repeating) for v in schedule.visits]
    assert visits == [
        ("BASELINE", VisitType.SCHEDULED, 1, False),
        ("WEEK_1", VisitType.UNSCHEDULED, None, False),
        ("WEEK_2", VisitType.UNSCHEDULED, None, False),
        ("DIARY", VisitType.UNSCHEDULED, None, True),
        ("AE", VisitType.UNSCHEDULED, None, False),  # a Common event whose forms are also at visits
    ]
    warnings = "\n".join(result.warnings)
    assert "no visit timing in the file: BASELINE is the anchor" in warnings
    assert "no timing for scheduled visit WEEK_1" in warnings
    assert result.definition.study.phase is None and "phase" not in warnings  # 1.3.2 has none: nothing invented


def test_a_repeating_group_beside_others_becomes_its_own_repeating_form() -> None:
    definition = import_odm_file(odmlib("cdash-odm-test.xml")).definition
    baseline = definition.visit("BASELINE")
    assert baseline is not None
    assert baseline.forms == ("ODM_F_DM", "ODM_F_VS", "ODM_F_VS_ODM_IG_VS", "ODM_F_AE", "ODM_F_AE_ODM_IG_AE")
    rows = definition.form("ODM_F_AE_ODM_IG_AE")
    header = definition.form("ODM_F_AE")
    assert rows is not None and header is not None
    assert rows.repeating and not header.repeating
    assert [item.id for item in header.items] == ["ODM_IT_AE_AEYN"]
    assert definition.schedule.log_forms == ("ODM_F_RACE",)  # a FormDef no StudyEventDef references


def test_a_dangling_codelist_reference_degrades_to_text_with_a_warning() -> None:
    result = import_odm_file(odmlib("cdash-odm-test.xml"))
    sex = result.definition.form("ODM_F_DM").item("ODM_IT_DM_SEX")  # type: ignore[union-attr]
    assert sex is not None and (sex.type, sex.codelist, sex.max_length) == (ItemType.TEXT, None, 2)
    assert any("CodeList 'CL.SEX' is not defined" in warning for warning in result.warnings)


def test_odm_20_sections_and_static_repeats_map_to_a_repeating_form() -> None:
    result = import_odm_file(odm_example("RepeatingIG-UC-D-Example.xml"))
    definition = result.definition
    assert result.format == "odm-2.0"
    assert definition.study.id == "S_RPTIG_UC-D"
    assert definition.study.description is not None and definition.study.description.startswith("Medical History form")
    (form,) = definition.forms
    assert (form.id, form.repeating) == ("MEDHIST", True)
    assert [(i.id, i.label) for i in form.items] == [
        ("MH_BODSYS", "Body System"),
        ("MH_SYSOTH", "Other"),
        ("MH_TERM", "Abnormality"),
        ("MH_ACTIVE", "Currently Active"),
    ]  # English, not the French TranslatedText
    assert definition.schedule.visits[0].forms == ("MEDHIST",)
    assert any("IG.MEDHIST is not a Form group" in warning for warning in result.warnings)


def test_the_lzzt_timing_constraints_give_days_and_windows() -> None:
    path = odm_example("Timing_LZZT_Example_ODM.xml")
    meta = read_meta(parse_odm(path.read_bytes(), str(path)))
    anchor = choose_anchor(meta.timings, meta.event_order)
    result = resolve(meta.timings, anchor or "", meta.event_order)
    days = {oid: (p.offset + 1, p.early, p.late) for oid, p in result.placements.items()}
    assert anchor == "SE.VISIT2"
    assert days == {
        "SE.VISIT2": (1, 0, 0),
        "SE.VISIT3": (8, 0, 0),
        "SE.VISIT4": (15, 0, 0),
        "SE.VISIT5": (29, 3, 3),
        "SE.VISIT7": (43, 3, 3),
        "SE.VISIT8": (57, 3, 3),
        "SE.VISIT9": (85, 3, 3),
    }
    notes = [note for _, note in result.notes]
    assert "FinishToStart is taken as StartToStart: visits are scheduled by day" in notes
    assert any(note.startswith("puts SE.VISIT9 84 days after the anchor (-4/+4); TIM.006") for note in notes)


@pytest.mark.parametrize("name", ["Timing_LZZT_Example_ODM.xml", "Crossover_Studydesign.xml"])
def test_design_fragments_without_forms_are_refused_clearly(name: str) -> None:
    with pytest.raises(StudyDefinitionError) as raised:
        import_odm_file(odm_example(name))
    assert "MetaDataVersion MV.001 defines no forms" in str(raised.value)
    assert raised.value.problems[0].line <= 2


def test_the_hypercholesterolemia_example_fails_the_132_xsd_with_lines() -> None:
    path = odm_example("Hypercholesterolemia_CV_Risk_factors_FH_CRF_1_3_2.xml")
    with pytest.raises(StudyDefinitionError) as raised:
        import_odm_file(path)
    problems = raised.value.problems
    assert [p.line for p in problems] == [13, 15, 16, 18, 19, 128]
    assert problems[0].message.startswith("ODM 1.3.2 XSD: Element 'ItemGroupRef': This element is not expected")
    assert problems[0].pointer.endswith("StudyEventDef[@OID='SE.MH']/ItemGroupRef")
    assert "The value 'Static' is not an element of the set" in problems[3].message


def test_the_invalid_odmlib_file_is_refused_at_its_line() -> None:
    with pytest.raises(StudyDefinitionError) as raised:
        import_odm_file(odmlib("cdash-odm-test-invalid.xml"))
    (problem,) = raised.value.problems
    assert (problem.line, problem.pointer) == (14, "/ODM/Study[@OID='trace-xml-safety01']/GlobalVariables/studyName")
    assert "Element 'studyName': This element is not expected. Expected is ( StudyName )" in problem.message


def test_odm_with_clinical_data_imports_its_metadata() -> None:
    result = import_odm_file(odmlib("odm-data-snapshot.xml"))
    assert result.definition.study.id == "1001_VIRUS"
    assert [visit.id for visit in result.definition.schedule.visits] == ["SCREENING", "VISIT_1", "VISIT_2", "VISIT_3"]


def _odm(body: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" FileOID="T" FileType="Snapshot" CreationDateTime="2024-01-01T00:00:00Z"
     ODMVersion="1.3.2">
  <Study OID="T"><GlobalVariables><StudyName>T</StudyName><StudyDescription/><ProtocolName>T</ProtocolName>
  </GlobalVariables><MetaDataVersion OID="V1" Name="V1">{body}</MetaDataVersion></Study></ODM>""".encode()


_FORM = """<StudyEventDef OID="SE.A" Name="A" Repeating="No" Type="Scheduled">
  <FormRef FormOID="F.A" Mandatory="Yes"/></StudyEventDef>
  <FormDef OID="F.A" Name="A" Repeating="No"><ItemGroupRef ItemGroupOID="IG.A" Mandatory="Yes"/></FormDef>
  <ItemGroupDef OID="IG.A" Name="A" Repeating="No"><ItemRef ItemOID="I.Q" Mandatory="Yes"/></ItemGroupDef>"""


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        ('<TranslatedText xml:lang="fr">Poids</TranslatedText><TranslatedText>Weight</TranslatedText>', "Weight"),
        (
            '<TranslatedText xml:lang="de">Gewicht</TranslatedText>'
            '<TranslatedText xml:lang="en-GB">Weight</TranslatedText>',
            "Weight",
        ),
        (
            '<TranslatedText xml:lang="de">Gewicht</TranslatedText>'
            '<TranslatedText xml:lang="fr">Poids</TranslatedText>',
            "Gewicht",
        ),
    ],
)
def test_question_text_prefers_the_default_language_then_english(texts: str, expected: str) -> None:
    item = f'<ItemDef OID="I.Q" Name="Q" DataType="float"><Question>{texts}</Question></ItemDef>'
    definition = import_odm(_odm(_FORM + item), "inline.xml").definition
    assert definition.forms[0].items[0].label == expected


def test_oids_map_to_identifiers_deterministically() -> None:
    item = '<ItemDef OID="I.Q" Name="Q" DataType="partialDate"/>'
    first = import_odm(_odm(_FORM + item), "a.xml").definition
    second = import_odm(_odm(_FORM + item), "b.xml").definition
    assert first == second
    assert (first.forms[0].id, first.forms[0].items[0].id, first.schedule.visits[0].id) == ("A", "Q", "A")
    assert first.forms[0].items[0].type is ItemType.TEXT


def test_a_study_of_unscheduled_events_still_gets_an_anchor() -> None:
    body = _FORM.replace('Type="Scheduled"', 'Type="Unscheduled"') + '<ItemDef OID="I.Q" Name="Q" DataType="text"/>'
    result = import_odm(_odm(body), "inline.xml")
    (visit,) = result.definition.schedule.visits
    assert (visit.id, visit.type, visit.day) == ("A", VisitType.SCHEDULED, 1)
    assert any("Unscheduled event A is the anchor" in warning for warning in result.warnings)


def test_a_form_of_the_qs_domain_imports_as_a_form_and_as_a_questionnaire() -> None:
    result = import_odm_file(odm_example(DAVE))
    definition = result.definition
    assert definition.form("F_DIARY_IG_PD") is not None
    assert definition.questionnaires is not None
    (diary,) = definition.questionnaires.instruments
    assert (diary.id, diary.schedule.visits) == ("F_DIARY_IG_PD", ("DIARY",))
    kinds = {item.id: item.type.value for item in diary.items}
    assert kinds == {"I_DAY": "single_choice", "I_DATE": "date", "I_DIARY": "single_choice"}
    assert "questionnaire F_DIARY_IG_PD (domain QS), due at DIARY" in result.report.render()
    assert validate_definition(definition) == []
