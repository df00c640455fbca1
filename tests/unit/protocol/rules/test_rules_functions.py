"""Every function of the rule language, through compiled rules, with present, edge and missing values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from trialstack.protocol.rules import RuleType, compile_rule
from trialstack.protocol.rules.functions import FUNCTIONS
from trialstack.protocol.rules.reference import evaluate

T = RuleType
SYMBOLS: dict[str, RuleType] = {
    "N": T.NUMBER,
    "M": T.NUMBER,
    "S": T.TEXT,
    "D": T.DATE,
    "E": T.DATE,
    "DT": T.DATETIME,
    "B": T.BOOLEAN,
}
JAN5 = date(2026, 1, 5)


def value(source: str, env: Mapping[str, object] | None = None) -> object:
    """The compiled result, after checking the reference interpreter gives the same value and type."""
    rule = compile_rule(source, SYMBOLS, expect=None)
    result = rule(env or {})
    expected = evaluate(rule.expr, env or {})
    assert (result, type(result)) == (expected, type(expected))
    return result


@pytest.mark.parametrize(
    ("env", "blank"),
    [({}, True), ({"S": None}, True), ({"S": ""}, True), ({"S": " \t"}, True), ({"S": "x"}, False)],
)
def test_is_blank_and_is_present_are_never_unknown(env: dict[str, object], blank: bool) -> None:
    assert value("is_blank(S)", env) is blank
    assert value("is_present(S)", env) is (not blank)


def test_is_blank_of_zero_false_and_dates() -> None:
    assert value("is_blank(N)", {"N": 0}) is False  # zero is a value
    assert value("is_blank(B)", {"B": False}) is False
    assert value("is_present(D)", {"D": JAN5}) is True
    assert value("is_blank(N)", {"N": float("nan")}) is True  # NaN is read as missing


def test_days_between_counts_calendar_days_from_a_to_b() -> None:
    assert value("days_between(D, E)", {"D": date(2026, 1, 1), "E": date(2026, 1, 29)}) == 28
    assert value("days_between(D, E)", {"D": date(2026, 1, 29), "E": date(2026, 1, 1)}) == -28
    assert value("days_between(D, E)", {"D": date(2024, 2, 28), "E": date(2024, 3, 1)}) == 2  # leap year
    late = datetime(2026, 1, 1, 23, 59, tzinfo=UTC)
    assert value("days_between(DT, D)", {"DT": late, "D": date(2026, 1, 2)}) == 1
    assert value("days_between(D, E)", {"D": JAN5}) is None


def test_add_days_keeps_the_type_and_needs_whole_days() -> None:
    assert value("add_days(D, 28)", {"D": JAN5}) == date(2026, 2, 2)
    assert value("add_days(D, -5)", {"D": JAN5}) == date(2025, 12, 31)
    assert value("add_days(D, 2.0)", {"D": JAN5}) == date(2026, 1, 7)
    assert value("add_days(D, 1.5)", {"D": JAN5}) is None
    at = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert value("add_days(DT, 1)", {"DT": at}) == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    assert value("add_days(D, 10000000)", {"D": JAN5}) is None  # beyond year 9999
    assert value("add_days(D, N)", {"D": JAN5}) is None


def test_date_parses_iso_calendar_dates_only() -> None:
    assert value('date("2026-01-05")') == JAN5
    assert value("date(S)", {"S": "2024-02-29"}) == date(2024, 2, 29)
    assert value("date(S)", {"S": "2026-UN-UN"}) is None  # partial dates are unknown
    assert value("date(S)", {"S": "20260105"}) is None
    assert value("date(S)", {"S": "2025-02-29"}) is None
    assert value("date(DT)", {"DT": datetime(2026, 1, 5, 23, 0, tzinfo=UTC)}) == JAN5
    assert value("date(S)", {}) is None


def test_datetime_requires_an_offset() -> None:
    plus_one = timezone(timedelta(hours=1))
    assert value('datetime("2026-01-05T10:00:00+01:00")') == datetime(2026, 1, 5, 10, tzinfo=plus_one)
    assert value("datetime(S)", {"S": "2026-01-05T10:00:00Z"}) == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert value("datetime(S)", {"S": "2026-01-05T10:00:00"}) is None
    assert value("datetime(S)", {"S": "soon"}) is None


def test_year() -> None:
    assert value("year(D)", {"D": JAN5}) == 2026
    assert value("year(DT)", {"DT": datetime(1999, 12, 31, 23, tzinfo=UTC)}) == 1999
    assert value("year(D)", {}) is None


@pytest.mark.parametrize(
    ("birth", "on", "years"),
    [
        (date(2008, 1, 5), date(2026, 1, 5), 18),  # the birthday itself counts
        (date(2008, 1, 6), date(2026, 1, 5), 17),
        (date(2000, 2, 29), date(2025, 2, 28), 24),  # born 29 Feb: older on 1 March in common years
        (date(2000, 2, 29), date(2025, 3, 1), 25),
        (date(2000, 2, 29), date(2024, 2, 29), 24),
    ],
)
def test_age_in_completed_years(birth: date, on: date, years: int) -> None:
    assert value("age(D, E)", {"D": birth, "E": on}) == years


def test_age_with_a_datetime_and_with_a_missing_date() -> None:
    assert value("age(D, DT)", {"D": date(2008, 1, 5), "DT": datetime(2026, 1, 5, 1, tzinfo=UTC)}) == 18
    assert value("age(D, E) >= 18", {"E": JAN5}) is None


def test_abs() -> None:
    assert value("abs(N)", {"N": -3}) == 3
    assert value("abs(N)", {"N": Decimal("-0.5")}) == Decimal("0.5")
    assert value("abs(N)", {}) is None


@pytest.mark.parametrize(
    ("source", "env", "expected"),
    [
        ("round(N)", {"N": Decimal("2.5")}, 3),  # half up, not banker's (Python would give 2)
        ("round(N)", {"N": Decimal("-2.5")}, -3),  # half away from zero
        ("round(N, 1)", {"N": Decimal("24.25")}, Decimal("24.3")),
        ("round(N, 2)", {"N": 7}, Decimal("7.00")),
        ("round(N, -1)", {"N": 125}, 130),
        ("round(N, 0.5)", {"N": 1}, None),
        ("round(N, M)", {"N": 1}, None),
        ("round(N, 40)", {"N": 1}, None),
    ],
)
def test_round(source: str, env: dict[str, object], expected: object) -> None:
    result = value(source, env)
    assert (result, type(result)) == (expected, type(expected))


def test_min_and_max() -> None:
    assert value("min(N, M, 3)", {"N": 5, "M": Decimal("2.5")}) == Decimal("2.5")
    assert value("max(N, M, 3)", {"N": 5, "M": Decimal("2.5")}) == 5
    assert value("max(D, E)", {"D": JAN5, "E": date(2026, 2, 1)}) == date(2026, 2, 1)
    assert value('min(S, "b")', {"S": "a"}) == "a"
    assert value("min(N, M)", {"N": 5}) is None  # any missing argument: unknown


def test_len() -> None:
    assert value("len(S)", {"S": "ABC"}) == 3
    assert value("len(S)", {"S": ""}) == 0
    assert value("len(S) <= 200", {}) is None


def test_coalesce_takes_the_first_present_value() -> None:
    assert value("coalesce(N, M, 0)", {"M": 7}) == 7
    assert value("coalesce(N, M, 0)", {}) == 0
    assert value('coalesce(S, "none")', {"S": "  "}) == "none"  # blank text is skipped like a missing value
    assert value("coalesce(N, M)", {}) is None  # unknown only when every argument is missing
    assert value("coalesce(N, 0) + 1 > 0", {}) is True


def test_the_function_table_lists_exactly_the_documented_functions() -> None:
    assert set(FUNCTIONS) == {
        "is_blank",
        "is_present",
        "coalesce",
        "days_between",
        "add_days",
        "date",
        "datetime",
        "year",
        "age",
        "abs",
        "round",
        "min",
        "max",
        "len",
    }
    assert FUNCTIONS["round"].signature() == "round(NUMBER[, NUMBER])"
    assert FUNCTIONS["coalesce"].signature() == "coalesce(any type, ...)"
    assert FUNCTIONS["days_between"].signature() == "days_between(DATE or DATETIME, DATE or DATETIME)"
