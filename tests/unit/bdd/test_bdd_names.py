"""Visits, forms, items and values named as a study team writes them, resolved against HTN-201."""

from __future__ import annotations

import pytest

from trialstack.bdd.errors import ReferenceProblem
from trialstack.bdd.names import Names
from trialstack.capture.refs import FormKey, VisitKey


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Week 2", VisitKey("WEEK2")),
        ("WEEK2", VisitKey("WEEK2")),
        ("week 12", VisitKey("WEEK12")),
        ("Day 1", VisitKey("DAY1")),
        ("Randomization", VisitKey("DAY1")),
        ("Day 1 / Randomization", VisitKey("DAY1")),
        ("End of Study", VisitKey("EOS")),
        ("Early Termination", VisitKey("EOS")),
        ("Unscheduled 2", VisitKey("UNSCHED", 2)),
        ("UNSCHED.1", VisitKey("UNSCHED", 1)),
    ],
)
def test_visits_by_id_name_or_part_of_the_name(names: Names, text: str, key: VisitKey) -> None:
    assert names.visit(text) == key


def test_a_repeating_visit_needs_its_instance(names: Names) -> None:
    with pytest.raises(ReferenceProblem, match='visit "Unscheduled" repeats: name the instance'):
        names.visit("Unscheduled")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('the "Week 2" vital signs', FormKey("VS", VisitKey("WEEK2"))),
        ('"Screening" "Vital Signs" form', FormKey("VS", VisitKey("SCREENING"))),
        ('the "Day 1" eligibility confirmation', FormKey("IE", VisitKey("DAY1"))),
        ('the "Screening" laboratory', FormKey("LB", VisitKey("SCREENING"))),
        ('the "Unscheduled 2" VS', FormKey("VS", VisitKey("UNSCHED", 2))),
        ("the adverse event record 1", FormKey("AE", None, 1)),
        ('the "Adverse Events" record 2', FormKey("AE", None, 2)),
        ("the concomitant medication record 3", FormKey("CM", None, 3)),
        ("WEEK2.VS", FormKey("VS", VisitKey("WEEK2"))),
        ("AE.1", FormKey("AE", None, 1)),
    ],
)
def test_form_instances(names: Names, text: str, key: FormKey) -> None:
    assert names.form_instance(text) == key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'the "Week 2" laboratory',
            "Local Laboratory (chemistry) is not collected at Week 2 (forms there: Vital Signs)",
        ),
        ("the vital signs record 1", "Vital Signs is collected at visits"),
        ("the vital signs", 'cannot tell which form "the vital signs" is'),
        ('the "Week 2" forms', 'unknown form "forms"'),
    ],
)
def test_form_instances_that_cannot_be(names: Names, text: str, message: str) -> None:
    with pytest.raises(ReferenceProblem, match=message.replace("(", r"\(").replace(")", r"\)")):
        names.form_instance(text)


@pytest.mark.parametrize(
    ("form", "text", "item"),
    [
        ("VS", "SYSBP", "SYSBP"),
        ("VS", "sysbp", "SYSBP"),
        ("VS", "SBP", "SYSBP"),
        ("VS", "DBP", "DIABP"),
        ("VS", "Systolic blood pressure", "SYSBP"),
        ("VS", "Systolic blood pressure, seated (mean of 3 readings)", "SYSBP"),
        ("VS", "BMI", "BMI"),
        ("VS", "Pulse rate", "PULSE"),
        ("LB", "ALT", "ALT"),
        ("LB", "Alanine aminotransferase", "ALT"),
        ("DM", "Date of birth", "BRTHDAT"),
        ("AE", "Outcome", "AEOUT"),
    ],
)
def test_items_by_id_label_short_label_initials_or_abbreviation(names: Names, form: str, text: str, item: str) -> None:
    assert names.item(form, text).id == item


def test_an_unknown_item_names_the_form_and_the_closest_items(names: Names) -> None:
    with pytest.raises(ReferenceProblem, match=r'unknown item "SYSPB" on Vital Signs \(VS\) \(closest: SYSBP'):
        names.item("VS", "SYSPB")


def test_choices_by_code_or_text(names: Names) -> None:
    sex = names.item("DM", "SEX")
    assert names.value(sex, "Female") == "F" and names.value(sex, "F") == "F" and names.value(sex, "x") == "x"
    outcome = names.item("AE", "AEOUT")
    assert names.value(outcome, "recovered/resolved") == "RECOVERED/RESOLVED"
    assert names.value(names.item("VS", "SYSBP"), "Female") == "Female"


def test_checks_include_range_and_window_checks(names: Names) -> None:
    ids = names.check_ids()
    assert {"VS-SBP-ELIG", "VS-SYSBP-RANGE", "WEEK2-WINDOW"} <= set(ids)
    assert "UNSCHED-WINDOW" not in ids
    assert names.check_item("VS-SBP-ELIG") == ("VS", "SYSBP")
    assert names.check_item("WEEK2-WINDOW") == (None, "VISIT_DATE")
