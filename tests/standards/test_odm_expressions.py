"""The XPath idiom of ODM conditions translates into the rule language, typed by the item; the rest does not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialstack.protocol.definition import ItemType
from trialstack.protocol.rules import parse
from trialstack.standards.odm_expressions import Target, Untranslatable, negate, translate_xpath, typed_literal

TYPES = {"I_SEX": ItemType.CHOICE, "I_DIABP": ItemType.INTEGER, "I_SMOKING": ItemType.BOOLEAN, "I_DT": ItemType.DATE}


def resolve(target: Target) -> tuple[str, ItemType]:
    name = f"{target.form}.{target.item}" if target.form else target.item
    return (f"{target.event}.{name}" if target.event else name), TYPES.get(target.item, ItemType.TEXT)


@pytest.mark.parametrize(
    ("xpath", "rule"),
    [
        ("../ItemData[@ItemOID='I_SEX'][@Value='M']", 'I_SEX == "M"'),
        ("../ItemData[@ItemOID='I_DIABP'][@Value > 90]", "I_DIABP > 90"),
        ("../ItemData[@ItemOID='I_DIABP']/@Value >= '90'", "I_DIABP >= 90"),
        ("90 < ../ItemData[@ItemOID='I_DIABP']/@Value", "I_DIABP > 90"),
        ("../ItemData[@ItemOID='I_SMOKING'][@Value='0']", "I_SMOKING == false"),
        ("../ItemData[@ItemOID='I_DT'][@Value < '2020-01-01']", 'I_DT < date("2020-01-01")'),
        (
            "../FormData[@FormOID='F_BASE']/ItemGroupData[@ItemGroupOID='IG_SH']/ItemData[@ItemOID='I_SEX'][@Value='F']",
            'F_BASE.I_SEX == "F"',
        ),
        (
            "../../StudyEventData[@StudyEventOID='SCR']/FormData[@FormOID='DM']/ItemData[@ItemOID='I_SEX']",
            "is_present(SCR.DM.I_SEX)",
        ),
        (
            "../ItemData[@ItemOID='I_SEX'][@Value='F' or @Value='M']"
            " and not(../ItemData[@ItemOID='I_DIABP'][@Value<60])",
            '((I_SEX == "F" or I_SEX == "M") and not (I_DIABP < 60))',
        ),
    ],
)
def test_translates(xpath: str, rule: str) -> None:
    assert translate_xpath(xpath, resolve) == rule
    parse(rule)  # and the result is rule-language syntax


@pytest.mark.parametrize(
    ("xpath", "reason"),
    [
        ("/ODM/ClinicalData", "absolute paths"),
        ("../ItemData[1]", "not in the translatable XPath subset"),
        ("count(../ItemData) > 2", "not in the translatable XPath subset"),
        ("../ItemData[@ItemOID='A'][@TransactionType='Insert']", "not a selection by ItemOID"),
        ("../ItemGroupData[@ItemGroupOID='IG']", "must end at ItemData"),
        ("../ItemData[@ItemOID='I_DIABP'][@Value='high']", "'high' is not a number"),
        ("../ItemData[@ItemOID='I_SMOKING'][@Value > 1]", "only be tested for equality"),
    ],
)
def test_does_not_guess(xpath: str, reason: str) -> None:
    with pytest.raises(Untranslatable, match=reason):
        translate_xpath(xpath, resolve)


def test_text_literals_are_escaped() -> None:
    assert typed_literal(ItemType.TEXT, 'say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'
    assert parse(typed_literal(ItemType.TEXT, 'say "hi" \\ bye'))


@given(st.sampled_from(["A == 1", "A > 1 and B < 2", "not (A) and not (B)", "is_present(X)", '(A == "x") or B']))
def test_negating_twice_gives_the_text_back(expression: str) -> None:
    assert negate(negate(expression)) == expression
    assert negate(expression) != expression
