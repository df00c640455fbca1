"""The static types of the rule language and the runtime values that carry them."""

from __future__ import annotations

from enum import StrEnum


class RuleType(StrEnum):
    """Type of an item or an expression, checked when a study is loaded rather than when data is saved.

    Runtime values: NUMBER is int or decimal.Decimal (a float is accepted and read as the Decimal of
    its repr), TEXT is str, DATE is datetime.date, DATETIME is an aware datetime.datetime, BOOLEAN is
    bool. A missing value is None or an absent key, whatever the type. NULL is only the type of the
    `null` literal; it fits wherever a value is expected, except in comparisons (always unknown).
    """

    NUMBER = "NUMBER"
    TEXT = "TEXT"
    DATE = "DATE"
    DATETIME = "DATETIME"
    BOOLEAN = "BOOLEAN"
    NULL = "NULL"


DATE_LIKE = frozenset({RuleType.DATE, RuleType.DATETIME})
ANY = frozenset(RuleType)


def describe(types: frozenset[RuleType]) -> str:
    """Render a set of accepted types for messages, e.g. 'DATE or DATETIME'."""
    if types >= ANY - {RuleType.NULL}:
        return "any type"
    names = sorted(t.value for t in types if t is not RuleType.NULL)
    return " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"
