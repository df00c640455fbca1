"""Parser: tree shapes, precedence, literals, positions, and syntax errors with line and column."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trialstack.errors import TrialStackError
from trialstack.protocol.rules import RuleCompileError, RuleType, names_in, parse
from trialstack.protocol.rules.ast import Arith, BoolOp, Call, Compare, Const, Member, Name, Neg, Not


def test_precedence_and_binds_tighter_than_or() -> None:
    tree = parse("A or B and C")
    assert isinstance(tree, BoolOp) and tree.op == "or"
    assert tree.left == Name("A", 1, 1)
    assert isinstance(tree.right, BoolOp) and tree.right.op == "and"


def test_not_applies_to_the_whole_comparison() -> None:
    tree = parse("not A == 1")
    assert isinstance(tree, Not)
    assert isinstance(tree.operand, Compare) and tree.operand.op == "=="


def test_arithmetic_precedence_and_associativity() -> None:
    tree = parse("A - B - C * D")
    assert isinstance(tree, Arith) and tree.op == "-"
    assert isinstance(tree.left, Arith) and tree.left.op == "-"  # left-associative
    assert isinstance(tree.right, Arith) and tree.right.op == "*"


def test_unary_minus_binds_looser_than_power_and_power_is_right_associative() -> None:
    tree = parse("-A ** B ** C")
    assert isinstance(tree, Neg)
    power = tree.operand
    assert isinstance(power, Arith) and power.op == "**" and power.left == Name("A", 1, 2)
    assert isinstance(power.right, Arith) and power.right.op == "**"


def test_bmi_expression_parses_with_parentheses() -> None:
    tree = parse("WEIGHT / ((HEIGHT / 100) ** 2)")
    assert isinstance(tree, Arith) and tree.op == "/"
    assert isinstance(tree.right, Arith) and tree.right.op == "**"
    assert tree.right.right == Const(2, RuleType.NUMBER, 1, 29)


def test_number_literals_are_int_or_decimal_never_float() -> None:
    assert parse("18") == Const(18, RuleType.NUMBER, 1, 1)
    decimal = parse("1.50")
    assert isinstance(decimal, Const) and type(decimal.value) is Decimal and decimal.value == Decimal("1.50")
    assert parse("-2.5") == Const(Decimal("-2.5"), RuleType.NUMBER, 1, 1)


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ('"M"', "M"),
        ("'F'", "F"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'it\'s'", "it's"),
        (r'"a\\b\nc\td"', "a\\b\nc\td"),
        ('""', ""),
    ],
)
def test_string_literals_and_escapes(source: str, value: str) -> None:
    assert parse(source) == Const(value, RuleType.TEXT, 1, 1)


def test_keyword_literals() -> None:
    assert parse("true") == Const(True, RuleType.BOOLEAN, 1, 1)
    assert parse("false") == Const(False, RuleType.BOOLEAN, 1, 1)
    assert parse("null") == Const(None, RuleType.NULL, 1, 1)


def test_dotted_names_keep_their_full_text() -> None:
    assert parse("SBP") == Name("SBP", 1, 1)
    assert parse("VS.SBP") == Name("VS.SBP", 1, 1)
    assert parse("SCR.VS.SBP") == Name("SCR.VS.SBP", 1, 1)
    assert parse("notable") == Name("notable", 1, 1)  # a keyword prefix is still a name


def test_membership_with_tuple_or_list_of_literals() -> None:
    tree = parse('SEX in ("M", "F",)')
    assert tree == Member(
        Name("SEX", 1, 1), (Const("M", RuleType.TEXT, 1, 9), Const("F", RuleType.TEXT, 1, 14)), False, 1, 5
    )
    negated = parse("SCORE not in [-1, 99]")
    assert isinstance(negated, Member) and negated.negated is True
    assert [item.value for item in negated.items] == [-1, 99]


def test_calls_with_zero_one_and_many_arguments() -> None:
    assert parse("f()") == Call("f", (), 1, 1)
    tree = parse('days_between(IC.ICDAT, date("2026-01-05"))')
    assert isinstance(tree, Call) and tree.function == "days_between" and len(tree.args) == 2
    assert tree.args[1] == Call("date", (Const("2026-01-05", RuleType.TEXT, 1, 29),), 1, 24)


def test_operator_nodes_are_anchored_at_their_operator_on_any_line() -> None:
    tree = parse("AGE >= 18\n  and\n    SBP < 180")
    assert isinstance(tree, BoolOp) and (tree.line, tree.column) == (2, 3)
    assert isinstance(tree.right, Compare) and (tree.right.line, tree.right.column) == (3, 9)
    assert tree.right.left == Name("SBP", 3, 5)


def test_comments_and_newlines_are_ignored() -> None:
    tree = parse("# eligibility\nAGE >= 18  # adults only\n")
    assert tree == Compare(">=", Name("AGE", 2, 1), Const(18, RuleType.NUMBER, 2, 8), 2, 5)


@pytest.mark.parametrize(
    ("source", "message", "line", "column"),
    [
        ("AGE >= 18 and", "expected an operand after 'and', got end of expression", 1, 14),
        ("AGE >= 18 and\n  SBP <\n", "expected an operand after '<', got end of expression", 2, 8),
        ("AGE >= 18 and and SBP", "expected an operand after 'and', got 'and'", 1, 15),
        ("AGE 18", "expected an operator before '18'", 1, 5),
        ("1 < AGE < 3", "comparisons cannot be chained, got a second '<'; combine with 'and'", 1, 9),
        ("(AGE > 1", "expected ')' to close '(' at 1:1, got end of expression", 1, 9),
        ("AGE > 1)", "unmatched ')'", 1, 8),
        ("AGE = 18", "unexpected character '='; use '==' to compare", 1, 5),
        ("A && B", "unexpected character '&'; use 'and'", 1, 3),
        ('SEX == "M', "unexpected character '\"' (unterminated string?)", 1, 8),
        ("A.B.C.D > 1", "name 'A.B.C.D' has 4 parts, expected at most 3", 1, 7),
        (r'"a\q"', "unknown escape '\\q' in string", 1, 3),
        ("SEX in (1, X)", "expected a literal (a list after 'in' holds only literals) after ',', got 'X'", 1, 12),
        ("SEX in 3", "expected '(' or '[' after 'in', got '3'", 1, 8),
        ("A not 3", "expected 'in' after 'not', got '3'", 1, 7),
        ("f(A,)", "expected an operand after ',', got ')'", 1, 5),
        ("A.", "expected a name after '.', got end of expression", 1, 3),
        ("   ", "empty expression, expected an operand", 1, 1),
        ("AGE >= 18\n\n  and @", "unexpected character '@'", 3, 7),
        ("1.", "unexpected '.', expected an operator or end of expression", 1, 2),
        ("(1.)", "unexpected '.', expected an operator or ')'", 1, 3),
        ("f(1 .)", "unexpected '.', expected an operator or ')' or ','", 1, 5),
        ("SEX == 'M' 'F'", "expected an operator before 'F'", 1, 12),
        ("SEX in ('M' 'F')", "unexpected 'F', expected ')' or ','", 1, 13),
        ("SEX in ('M', 'F']", "unexpected ']', expected ')'", 1, 17),
        ("SEX in ['M'", "expected ']' to close '[' at 1:8, got end of expression", 1, 12),
    ],
)
def test_syntax_errors_carry_line_column_and_reason(source: str, message: str, line: int, column: int) -> None:
    with pytest.raises(RuleCompileError) as caught:
        parse(source)
    assert len(caught.value.errors) == 1
    error = caught.value.errors[0]
    assert (error.message, error.line, error.column) == (message, line, column)
    assert error.rule_id is None
    assert str(caught.value) == f"{line}:{column}: {message}"


def test_rule_compile_error_is_a_trialstack_error() -> None:
    with pytest.raises(TrialStackError) as caught:
        parse("A and")
    assert isinstance(caught.value, RuleCompileError)
    assert caught.value.code == "rule-compile-error"


def test_keywords_are_reserved_and_case_sensitive() -> None:
    with pytest.raises(RuleCompileError) as caught:
        parse("A == and")
    assert caught.value.errors[0].message == "expected an operand after '==', got 'and'"
    assert parse("AND") == Name("AND", 1, 1)  # upper case is an ordinary name; the checker rejects it if unknown


def test_python_code_is_never_executed() -> None:
    tree = parse('__import__("os")')
    assert tree == Call("__import__", (Const("os", RuleType.TEXT, 1, 12),), 1, 1)
    with pytest.raises(RuleCompileError):
        parse("(lambda: 1)()")
    with pytest.raises(RuleCompileError):
        parse("A.__class__.__bases__[0]")


def test_nesting_depth_is_limited() -> None:
    assert isinstance(parse("(" * 150 + "A" + ")" * 150), Name)
    with pytest.raises(RuleCompileError) as caught:
        parse(" + ".join(["A"] * 300))
    assert caught.value.errors[0].message == "expression nests deeper than 200 levels"


def test_names_in_lists_every_name_read_without_a_symbol_table() -> None:
    assert names_in("is_blank(AE.AEOUT) or AE.AEENDTC >= AE.AESTDTC") == {"AE.AEOUT", "AE.AEENDTC", "AE.AESTDTC"}
    assert names_in("days_between(IC.ICDAT, VISIT_DATE) <= 28 and 1 < 2") == {"IC.ICDAT", "VISIT_DATE"}
    assert names_in("true") == frozenset()
    with pytest.raises(RuleCompileError):
        names_in("A +")


def test_the_parser_is_built_once() -> None:
    from trialstack.protocol.rules.parser import _lark

    assert _lark() is _lark()
