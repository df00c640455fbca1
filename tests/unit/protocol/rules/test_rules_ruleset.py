"""RuleSet: all errors of all rules at once, evaluation, and the dependency graph for incremental runs."""

from __future__ import annotations

from datetime import date

import pytest

from trialstack.protocol.rules import RuleCompileError, RuleError, RuleEvaluationError, RuleSet, RuleType

T = RuleType
SYMBOLS: dict[str, RuleType] = {
    "VS.SBP": T.NUMBER,
    "VS.DBP": T.NUMBER,
    "DM.SEX": T.TEXT,
    "PREG.RESULT": T.TEXT,
    "IC.ICDAT": T.DATE,
    "SV.VISDAT": T.DATE,
    "DM.BRTHDAT": T.DATE,
}
RULES = {
    "SBP_RANGE": "VS.SBP >= 60 and VS.SBP <= 250",
    "SBP_GT_DBP": "VS.SBP > VS.DBP",
    "SEX_CODED": 'DM.SEX in ("M", "F")',
    "PREG_REQUIRED": 'DM.SEX != "F" or is_present(PREG.RESULT)',
    "SCREEN_WINDOW": "days_between(IC.ICDAT, SV.VISDAT) >= 0 and days_between(IC.ICDAT, SV.VISDAT) <= 28",
    "ADULT": "age(DM.BRTHDAT, IC.ICDAT) >= 18",
}
CASEBOOK: dict[str, object] = {
    "VS.SBP": 270,
    "VS.DBP": 80,
    "DM.SEX": "F",
    "IC.ICDAT": date(2026, 1, 5),
    "SV.VISDAT": date(2026, 1, 20),
}


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet(RULES, SYMBOLS)


def test_evaluate_returns_every_rule_in_order_with_unknowns(rules: RuleSet) -> None:
    results = rules.evaluate(CASEBOOK)
    assert results == {
        "SBP_RANGE": False,
        "SBP_GT_DBP": True,
        "SEX_CODED": True,
        "PREG_REQUIRED": False,
        "SCREEN_WINDOW": True,
        "ADULT": None,  # no birth date yet: unknown, so no query
    }
    assert list(results) == list(RULES)
    assert [rule_id for rule_id, ok in results.items() if ok is False] == ["SBP_RANGE", "PREG_REQUIRED"]


def test_compiled_rules_are_exposed_by_id(rules: RuleSet) -> None:
    assert len(rules) == 6
    assert rules.rules["SBP_GT_DBP"].reads == {"VS.SBP", "VS.DBP"}
    assert rules.rules["ADULT"]({"DM.BRTHDAT": date(2000, 1, 1), "IC.ICDAT": date(2026, 1, 5)}) is True
    assert rules.names == {"VS.SBP", "VS.DBP", "DM.SEX", "PREG.RESULT", "IC.ICDAT", "SV.VISDAT", "DM.BRTHDAT"}


def test_dependency_graph(rules: RuleSet) -> None:
    assert rules.readers("VS.SBP") == ["SBP_RANGE", "SBP_GT_DBP"]
    assert rules.readers("IC.ICDAT") == ["SCREEN_WINDOW", "ADULT"]
    assert rules.readers("AE.AETERM") == []
    assert rules.affected_by(["DM.SEX"]) == ["SEX_CODED", "PREG_REQUIRED"]
    assert rules.affected_by(["DM.BRTHDAT", "VS.DBP"]) == ["SBP_GT_DBP", "ADULT"]  # rule order, not name order
    assert rules.affected_by({"VS.SBP", "VS.DBP"}) == ["SBP_RANGE", "SBP_GT_DBP"]  # each rule once
    assert rules.affected_by([]) == []
    assert rules.affected_by(["UNKNOWN"]) == []


def test_evaluate_changed_runs_only_the_rules_that_read_a_changed_name(rules: RuleSet) -> None:
    corrected = {**CASEBOOK, "PREG.RESULT": "NEGATIVE"}
    assert rules.evaluate_changed(corrected, ["PREG.RESULT"]) == {"PREG_REQUIRED": True}
    assert rules.evaluate_changed(corrected, ["VS.SBP", "DM.SEX"]) == {
        "SBP_RANGE": False,
        "SBP_GT_DBP": True,
        "SEX_CODED": True,
        "PREG_REQUIRED": True,
    }
    assert rules.evaluate_changed(corrected, ["SITE"]) == {}


def test_incremental_results_agree_with_a_full_evaluation(rules: RuleSet) -> None:
    before = rules.evaluate(CASEBOOK)
    after_env = {**CASEBOOK, "VS.SBP": 120, "DM.BRTHDAT": date(1990, 6, 1)}
    changed = rules.evaluate_changed(after_env, ["VS.SBP", "DM.BRTHDAT"])
    assert {**before, **changed} == rules.evaluate(after_env)
    assert changed == {"SBP_RANGE": True, "SBP_GT_DBP": True, "ADULT": True}


def test_a_single_str_is_refused_as_changed_names(rules: RuleSet) -> None:
    with pytest.raises(TypeError, match="not one str"):
        rules.affected_by("VS.SBP")


def test_every_error_of_every_rule_is_reported_at_once() -> None:
    broken = {
        "OK": "VS.SBP > 0",
        "TYPO": "VS.SPB > 0 and IC.ICDAT > 3",
        "SYNTAX": "VS.SBP >=\n",
        "NOT_BOOL": "VS.SBP + 1",
    }
    with pytest.raises(RuleCompileError) as caught:
        RuleSet(broken, SYMBOLS)
    assert caught.value.errors == [
        RuleError("unknown name 'VS.SPB'; did you mean 'VS.SBP'?", 1, 1, "TYPO"),
        RuleError("'>' got DATE and NUMBER, expected two operands of the same type", 1, 25, "TYPO"),
        RuleError("expected an operand after '>=', got end of expression", 1, 10, "SYNTAX"),
        RuleError("rule got NUMBER, expected BOOLEAN", 1, 8, "NOT_BOOL"),
    ]
    assert str(caught.value.errors[0]) == "TYPO:1:1: unknown name 'VS.SPB'; did you mean 'VS.SBP'?"


def test_a_runtime_type_error_names_the_rule() -> None:
    rules = RuleSet(RULES, SYMBOLS)
    with pytest.raises(RuleEvaluationError) as caught:
        rules.evaluate({**CASEBOOK, "VS.DBP": "eighty"})
    assert caught.value.rule_id == "SBP_GT_DBP"
    assert caught.value.message.startswith("SBP_GT_DBP: rule 'VS.SBP > VS.DBP' cannot evaluate these values")
