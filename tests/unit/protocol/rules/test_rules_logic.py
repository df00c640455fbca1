"""Three-valued (Kleene) logic and the value semantics, on the compiled rule and the reference alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from trialstack.protocol.rules import RuleEvaluationError, RuleType, compile_rule
from trialstack.protocol.rules.reference import evaluate

T = RuleType
SYMBOLS: dict[str, RuleType] = {
    "A": T.BOOLEAN,
    "B": T.BOOLEAN,
    "C": T.BOOLEAN,
    "X": T.NUMBER,
    "Y": T.NUMBER,
    "S": T.TEXT,
    "D": T.DATE,
    "DT": T.DATETIME,
}
TRI = [True, False, None]

Evaluator = Callable[[str, Mapping[str, object]], object]


def compiled(source: str, env: Mapping[str, object]) -> object:
    return compile_rule(source, SYMBOLS, expect=None)(env)


def reference(source: str, env: Mapping[str, object]) -> object:
    return evaluate(compile_rule(source, SYMBOLS, expect=None).expr, env)


@pytest.fixture(params=[compiled, reference], ids=["compiled", "reference"])
def run(request: pytest.FixtureRequest) -> Evaluator:
    evaluator: Evaluator = request.param
    return evaluator


def kleene_and(a: bool | None, b: bool | None) -> bool | None:
    return False if False in (a, b) else None if None in (a, b) else True


def kleene_or(a: bool | None, b: bool | None) -> bool | None:
    return True if True in (a, b) else None if None in (a, b) else False


def test_truth_table_of_and(run: Evaluator) -> None:
    table = {(a, b): run("A and B", {"A": a, "B": b}) for a in TRI for b in TRI}
    assert table == {
        (True, True): True,
        (True, False): False,
        (True, None): None,
        (False, True): False,
        (False, False): False,
        (False, None): False,
        (None, True): None,
        (None, False): False,
        (None, None): None,
    }


def test_truth_table_of_or(run: Evaluator) -> None:
    table = {(a, b): run("A or B", {"A": a, "B": b}) for a in TRI for b in TRI}
    assert table == {
        (True, True): True,
        (True, False): True,
        (True, None): True,
        (False, True): True,
        (False, False): False,
        (False, None): None,
        (None, True): True,
        (None, False): None,
        (None, None): None,
    }


def test_truth_table_of_not(run: Evaluator) -> None:
    assert [run("not A", {"A": a}) for a in TRI] == [False, True, None]


@pytest.mark.parametrize("source", ["A and B and C", "A or B or C", "A and (B or C)", "(A or B) and not C"])
def test_chains_follow_kleene_for_all_27_combinations(run: Evaluator, source: str) -> None:
    def expected(a: bool | None, b: bool | None, c: bool | None) -> bool | None:
        not_c = None if c is None else not c
        return {
            "A and B and C": kleene_and(kleene_and(a, b), c),
            "A or B or C": kleene_or(kleene_or(a, b), c),
            "A and (B or C)": kleene_and(a, kleene_or(b, c)),
            "(A or B) and not C": kleene_and(kleene_or(a, b), not_c),
        }[source]

    for a in TRI:
        for b in TRI:
            for c in TRI:
                assert run(source, {"A": a, "B": b, "C": c}) == expected(a, b, c), (a, b, c)


def test_an_absent_key_is_missing_like_none(run: Evaluator) -> None:
    assert run("A and B", {"A": True}) is None
    assert run("A and B", {"A": False}) is False
    assert run("X > 1", {}) is None


@pytest.mark.parametrize(
    "source", ["X > 1", "X == 1", "X != 1", "X < Y", "X + 1 > 0", "-X < 0", "X in (1, 2)", "X not in (1, 2)"]
)
def test_any_comparison_or_arithmetic_with_a_missing_value_is_unknown(run: Evaluator, source: str) -> None:
    assert run(source, {"X": None, "Y": 3}) is None


def test_range_checks_with_present_and_missing_values(run: Evaluator) -> None:
    within = "X >= 60 and X <= 250"
    outside = "X < 60 or X > 250"
    assert [run(within, {"X": x}) for x in (59, 60, 250, 251, None)] == [False, True, True, False, None]
    assert [run(outside, {"X": x}) for x in (59, 60, 250, 251, None)] == [True, False, False, True, None]
    assert run("60 <= X and 250 >= X and X != 100", {"X": 100}) is False


def test_required_if_and_date_order_checks(run: Evaluator) -> None:
    required_if = 'S != "F" or is_present(A)'
    assert run(required_if, {"S": "F"}) is False
    assert run(required_if, {"S": "F", "A": False}) is True
    assert run(required_if, {"S": "M"}) is True
    assert run(required_if, {}) is None
    order = "is_blank(D) or D >= date('2026-01-05')"
    assert [run(order, {"D": d}) for d in (None, date(2026, 1, 4), date(2026, 1, 5))] == [True, False, True]


def test_decimal_arithmetic_is_exact(run: Evaluator) -> None:
    assert run("X + Y == 0.3", {"X": Decimal("0.1"), "Y": Decimal("0.2")}) is True
    assert run("X * 3", {"X": Decimal("0.1")}) == Decimal("0.3")
    result = run("X / Y", {"X": 1, "Y": 4})
    assert result == Decimal("0.25") and type(result) is Decimal
    assert run("X ** 2", {"X": Decimal("1.5")}) == Decimal("2.25")
    assert run("X + 2", {"X": 1}) == 3 and type(run("X + 2", {"X": 1})) is int


def test_floats_are_read_as_the_decimal_of_their_repr(run: Evaluator) -> None:
    assert run("X == 0.1", {"X": 0.1}) is True  # a binary float 0.1 would not equal Decimal("0.1")
    assert run("X + Y == 0.3", {"X": 0.1, "Y": 0.2}) is True  # 0.1 + 0.2 != 0.3 in binary floats
    assert run("X in (36.6, 37.0)", {"X": 36.6}) is True
    assert run("X > 1", {"X": float("nan")}) is None  # not a number: treated as missing
    assert run("X > 1 and X < 2", {"X": float("inf")}) is None


@pytest.mark.parametrize("source", ["X / 0", "X / Y", "0 ** -1", "(-8) ** 0.5", "10 ** 100000"])
def test_undefined_arithmetic_is_unknown_not_an_error(run: Evaluator, source: str) -> None:
    assert run(source, {"X": 5, "Y": 0}) is None
    assert run(f"{source} > 1 or true", {"X": 5, "Y": 0}) is True


def test_date_and_datetime_compare_by_calendar_date(run: Evaluator) -> None:
    plus_two = timezone(timedelta(hours=2))
    late_evening = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    assert run("DT >= D", {"DT": late_evening, "D": date(2026, 1, 5)}) is True
    assert run("DT > D", {"DT": late_evening, "D": date(2026, 1, 5)}) is False
    assert run("DT == D", {"DT": late_evening, "D": date(2026, 1, 5)}) is True
    # the date is taken in the datetime's own offset: 00:30 at +02:00 is still 5 January there
    assert run("D == DT", {"DT": datetime(2026, 1, 5, 0, 30, tzinfo=plus_two), "D": date(2026, 1, 5)}) is True
    assert run('DT < date("2026-01-06")', {"DT": late_evening}) is True


def test_text_comparisons_and_membership(run: Evaluator) -> None:
    assert run('S in ("M", "F")', {"S": "F"}) is True
    assert run('S not in ("M", "F")', {"S": "U"}) is True
    assert run('S < "B"', {"S": "A"}) is True
    assert run('S == ""', {"S": ""}) is True  # blank text is a value to compare ...
    assert run("is_blank(S)", {"S": "  "}) is True  # ... but counts as not entered for is_blank


def test_constant_subexpressions_give_the_same_answers(run: Evaluator) -> None:
    assert run("1 + 2 * 3 == 7", {}) is True
    assert run("true and A", {"A": None}) is None
    assert run("false and A", {"A": None}) is False
    assert run("true or A", {"A": None}) is True
    assert run("null and false", {}) is False
    assert run("null or false", {}) is None
    assert run("not null", {}) is None
    assert run('add_days(date("2026-01-05"), 1.5) == D', {"D": date(2026, 1, 6)}) is None


def test_a_value_of_the_wrong_runtime_type_is_reported_not_silently_unknown() -> None:
    rule = compile_rule("X > 1", SYMBOLS)
    with pytest.raises(RuleEvaluationError) as caught:
        rule({"X": "high"})
    assert "rule 'X > 1' cannot evaluate these values" in caught.value.message
    assert isinstance(caught.value.__cause__, TypeError)


def test_range_fusion_keeps_every_test_of_a_longer_chain(run: Evaluator) -> None:
    source = "X >= 0 and X != 5 and X <= 10"
    assert [run(source, {"X": x}) for x in (-1, 0, 5, 10, 11, None)] == [False, True, False, True, False, None]
    source = "days_between(D, date('2026-01-10')) >= 0 and X > 1 and days_between(D, date('2026-01-10')) <= 3"
    env = {"D": date(2026, 1, 8), "X": 2}
    assert [run(source, {**env, "D": d}) for d in (date(2026, 1, 11), date(2026, 1, 8), date(2026, 1, 1))] == [
        False,
        True,
        False,
    ]
    assert run(source, {**env, "X": None}) is None
    assert run("X < 0 or X > 10 or X == 5", {"X": 5}) is True


def test_guards_on_presence_short_circuit_only_when_they_decide(run: Evaluator) -> None:
    # `is_blank(D) or ...` is True without looking further; otherwise the rest decides, unknown included
    assert run("is_blank(D) or X > 1", {}) is True
    assert run("is_blank(D) or X > 1", {"D": date(2026, 1, 1)}) is None
    assert run("is_blank(D) or X > 1", {"D": date(2026, 1, 1), "X": 0}) is False
    assert run("is_present(S) and X > 1", {"S": " "}) is False
    assert run("is_present(S) and X > 1", {"S": "x"}) is None
    assert run("is_blank(S) and is_present(D)", {"D": date(2026, 1, 1)}) is True
