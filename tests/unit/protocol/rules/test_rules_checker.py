"""Type checking at load: result types, and every error of an expression with its position."""

from __future__ import annotations

import pytest

from trialstack.protocol.rules import RuleCompileError, RuleError, RuleType, compile_rule, parse, typecheck

T = RuleType
SYMBOLS: dict[str, RuleType] = {
    "AGE": T.NUMBER,
    "SBP": T.NUMBER,
    "VS.SBP": T.NUMBER,
    "SCR.VS.SBP": T.NUMBER,
    "SEX": T.TEXT,
    "IC.ICDAT": T.DATE,
    "VISIT_DATE": T.DATE,
    "AE.AESTDTC": T.DATETIME,
    "PREGNANT": T.BOOLEAN,
}


def errors_of(source: str) -> list[tuple[str, int, int]]:
    with pytest.raises(RuleCompileError) as caught:
        typecheck(parse(source), SYMBOLS)
    return [(e.message, e.line, e.column) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("AGE >= 18 and SBP < 180", T.BOOLEAN),
        ("VS.SBP - SCR.VS.SBP", T.NUMBER),
        ('SEX in ("M", "F")', T.BOOLEAN),
        ("SBP / ((AGE / 100) ** 2)", T.NUMBER),
        ("days_between(IC.ICDAT, VISIT_DATE) <= 28", T.BOOLEAN),
        ("AE.AESTDTC >= IC.ICDAT", T.BOOLEAN),  # DATE and DATETIME compare by date
        ("add_days(AE.AESTDTC, 1)", T.DATETIME),
        ("add_days(IC.ICDAT, 1)", T.DATE),
        ('coalesce(SEX, "U")', T.TEXT),
        ("coalesce(null, AGE)", T.NUMBER),
        ("coalesce(null)", T.NULL),
        ("min(IC.ICDAT, VISIT_DATE)", T.DATE),
        ("max(1, 2.5, AGE)", T.NUMBER),
        ("round(SBP / 3, 1)", T.NUMBER),
        ("is_blank(PREGNANT) or not PREGNANT", T.BOOLEAN),
        ('date("2026-01-05")', T.DATE),
        ('datetime("2026-01-05T10:00:00+01:00")', T.DATETIME),
        ("PREGNANT == true", T.BOOLEAN),
        ("len(SEX)", T.NUMBER),
        ("null", T.NULL),
    ],
)
def test_well_typed_expressions_get_their_type(source: str, expected: RuleType) -> None:
    assert typecheck(parse(source), SYMBOLS) is expected


@pytest.mark.parametrize(
    ("source", "errors"),
    [
        ("SPB > 1", [("unknown name 'SPB'; did you mean 'SBP'?", 1, 1)]),
        ("QQQ > 1", [("unknown name 'QQQ'", 1, 1)]),
        (
            "dayz_between(IC.ICDAT, VISIT_DATE)",
            [("unknown function 'dayz_between'; did you mean 'days_between'?", 1, 1)],
        ),
        ("days_between(IC.ICDAT)", [("days_between() got 1 argument, expected 2", 1, 1)]),
        ("round(AGE, 1, 2)", [("round() got 3 arguments, expected 1 to 2", 1, 1)]),
        ("min(AGE)", [("min() got 1 argument, expected at least 2", 1, 1)]),
        ("days_between(IC.ICDAT, 3)", [("argument 2 of days_between() got NUMBER, expected DATE or DATETIME", 1, 24)]),
        ("IC.ICDAT < 5", [("'<' got DATE and NUMBER, expected two operands of the same type", 1, 10)]),
        ("AGE and PREGNANT", [("'and' got NUMBER, expected BOOLEAN", 1, 1)]),
        ("PREGNANT or SEX", [("'or' got TEXT, expected BOOLEAN", 1, 13)]),
        ("not AGE", [("'not' got NUMBER, expected BOOLEAN", 1, 5)]),
        ('SEX + "X"', [("'+' got TEXT, expected NUMBER", 1, 1), ("'+' got TEXT, expected NUMBER", 1, 7)]),
        ("-IC.ICDAT", [("'-' got DATE, expected NUMBER", 1, 2)]),
        ("PREGNANT < true", [("'<' got BOOLEAN, expected NUMBER, TEXT, DATE or DATETIME", 1, 10)]),
        (
            "AGE == null",
            [("'==' got NULL, expected a value (null is never equal; use is_blank or is_present)", 1, 5)],
        ),
        (
            'SEX in ("M", 1, null)',
            [
                ("list item got NUMBER, expected TEXT", 1, 14),
                ("list item got NULL, expected TEXT (null never matches; use is_blank)", 1, 17),
            ],
        ),
        ("IC.ICDAT in (1, 2)", [("'in' got DATE, expected NUMBER, TEXT or BOOLEAN", 1, 10)]),
        ("min(AGE, IC.ICDAT)", [("min() got DATE and NUMBER, expected arguments of one type", 1, 1)]),
        ('date("2026-02-30")', [("date() got '2026-02-30', expected a date 'YYYY-MM-DD'", 1, 6)]),
        (
            'datetime("2026-02-03T10:00")',
            [("datetime() got '2026-02-03T10:00', expected an ISO 8601 datetime with offset", 1, 10)],
        ),
    ],
)
def test_type_errors_say_got_and_expected_at_the_offending_node(
    source: str, errors: list[tuple[str, int, int]]
) -> None:
    assert errors_of(source) == errors


def test_all_errors_of_an_expression_are_collected_in_position_order() -> None:
    source = "QQQ > 1 and\n  IC.ICDAT < 5 and\n  dayz(AGE) and\n  SEX"
    assert errors_of(source) == [
        ("unknown name 'QQQ'", 1, 1),
        ("'<' got DATE and NUMBER, expected two operands of the same type", 2, 12),
        ("unknown function 'dayz'", 3, 3),
        ("'and' got TEXT, expected BOOLEAN", 4, 3),
    ]


def test_a_failed_subexpression_does_not_cascade() -> None:
    # the unknown name has no type, so neither the comparison nor the `and` reports it again
    assert errors_of("(QQQ + 1 > 2) and true") == [("unknown name 'QQQ'", 1, 2)]


def test_compile_rule_checks_the_expected_result_type() -> None:
    assert compile_rule("SBP / 2", SYMBOLS, expect=T.NUMBER).result_type is T.NUMBER
    assert compile_rule("SBP / 2", SYMBOLS, expect=None).result_type is T.NUMBER
    with pytest.raises(RuleCompileError) as caught:
        compile_rule("SBP / 2", SYMBOLS)  # a check must be BOOLEAN
    assert caught.value.errors == [RuleError("rule got NUMBER, expected BOOLEAN", 1, 5)]


def test_compile_rule_reports_type_errors_with_positions_across_lines() -> None:
    with pytest.raises(RuleCompileError) as caught:
        compile_rule("AGE >= 18\n  and SEX > 3", SYMBOLS)
    assert caught.value.errors == [RuleError("'>' got TEXT and NUMBER, expected two operands of the same type", 2, 11)]
    assert str(caught.value) == "2:11: '>' got TEXT and NUMBER, expected two operands of the same type"


def test_compiled_rule_exposes_source_reads_and_type() -> None:
    rule = compile_rule("is_blank(AE.AESTDTC) or AE.AESTDTC >= IC.ICDAT", SYMBOLS)
    assert rule.source == "is_blank(AE.AESTDTC) or AE.AESTDTC >= IC.ICDAT"
    assert rule.reads == frozenset({"AE.AESTDTC", "IC.ICDAT"})
    assert rule.result_type is T.BOOLEAN
