"""Symbol tables: which names each expression may use, and with which rule type."""

from __future__ import annotations

import pytest

from tests.unit.protocol.conftest import DEMO_STUDY
from trialstack.protocol.definition import ItemType
from trialstack.protocol.rules import RuleType
from trialstack.protocol.symbols import RULE_TYPES, refer, study_symbols
from trialstack.protocol.yaml_loader import load_study_yaml


def test_every_data_type_has_a_rule_type() -> None:
    assert set(RULE_TYPES) == set(ItemType)
    assert RULE_TYPES[ItemType.CHOICE] is RuleType.TEXT
    assert RULE_TYPES[ItemType.TIME] is RuleType.TEXT
    assert RULE_TYPES[ItemType.DECIMAL] is RuleType.NUMBER


def test_a_form_sees_its_items_bare_and_every_form_qualified(demo_text: str) -> None:
    symbols = study_symbols(load_study_yaml(demo_text, base_dir=DEMO_STUDY.parent))
    vital_signs = symbols.for_form("VS")
    assert vital_signs["SYSBP"] is RuleType.NUMBER
    assert vital_signs["VS.SYSBP"] is RuleType.NUMBER
    assert vital_signs["IC.ICDAT"] is RuleType.DATE
    assert vital_signs["WEEK12.VS.SYSBP"] is RuleType.NUMBER
    assert vital_signs["VISIT_DATE"] is RuleType.DATE
    assert vital_signs["DAY1.VISIT_DATE"] is RuleType.DATE
    assert vital_signs["SITE"] is RuleType.TEXT
    assert "ICDAT" not in vital_signs
    assert "WEEK2.LB.K" not in vital_signs  # no laboratory sample at week 2


def test_log_forms_run_outside_visits(demo_text: str) -> None:
    symbols = study_symbols(load_study_yaml(demo_text, base_dir=DEMO_STUDY.parent))
    adverse_events = symbols.for_form("AE")
    assert adverse_events["AESTDAT"] is RuleType.DATE
    assert "VISIT_DATE" not in adverse_events
    assert not any(name.endswith(".AE.AESTDAT") for name in adverse_events)
    assert "VISIT_DATE" in symbols.for_form(None, at_visit=True)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SYSBP", (None, "VS", "SYSBP")),
        ("DM.AGE", (None, "DM", "AGE")),
        ("WEEK2.VS.SYSBP", ("WEEK2", "VS", "SYSBP")),
        ("WEEK2.VISIT_DATE", ("WEEK2", None, None)),
        ("VISIT_DATE", (None, None, None)),
        ("SITE", (None, None, None)),
    ],
)
def test_names_refer_to_visits_forms_and_items(name: str, expected: tuple[str | None, ...]) -> None:
    reference = refer(name, "VS")
    assert (reference.visit, reference.form, reference.item) == expected
