"""The function table: signatures for the type checker, implementations for both evaluators.

A *strict* function is unknown (None) when any argument is missing and its implementation is never
called with None. is_blank, is_present and coalesce are not strict: they exist to talk about
missing values, so they never turn a missing argument into unknown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter

from trialstack.protocol.rules.types import ANY, DATE_LIKE, RuleType, describe
from trialstack.protocol.rules.values import CONTEXT, as_date

_NUMBER = frozenset({RuleType.NUMBER})
_TEXT = frozenset({RuleType.TEXT})
_ORDERED = frozenset({RuleType.NUMBER, RuleType.TEXT, RuleType.DATE, RuleType.DATETIME})
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function's signature. `params[-1]` repeats when `max_args` is None (variadic).

    `result` None means the result has the type of the arguments: the first argument's type, or the
    one type all arguments share when `same_type` is set (min, max, coalesce).
    """

    name: str
    params: tuple[frozenset[RuleType], ...]
    result: RuleType | None
    impl: Callable[..., object]
    min_args: int
    max_args: int | None
    strict: bool = True
    same_type: bool = False
    on_dates: Callable[..., object] | None = None  # faster equivalent when every argument is a DATE

    def accepts(self, index: int) -> frozenset[RuleType]:
        return self.params[min(index, len(self.params) - 1)]

    def signature(self) -> str:
        """E.g. 'round(NUMBER[, NUMBER])', 'min(DATE or ..., DATE or ..., ...)', for error messages."""
        shown = [describe(p) for p in self.params]
        text = ", ".join(shown[: self.min_args])
        if len(shown) > self.min_args:
            text += f"[, {', '.join(shown[self.min_args :])}]"
        if self.max_args is None:
            text += ", ..."
        return f"{self.name}({text})"


def is_blank(value: object) -> bool:
    """Missing, or text that is empty or only whitespace (what an untouched form field holds)."""
    return value is None or (isinstance(value, str) and not value.strip())


def is_present(value: object) -> bool:
    return not is_blank(value)


def coalesce(*values: object) -> object:
    """The first present argument (blank text is skipped like a missing value); None if none is."""
    for value in values:
        if not is_blank(value):
            return value
    return None


def days_between(start: date, end: date) -> int:
    """end - start in calendar days; a datetime counts by its date in its own UTC offset."""
    return (as_date(end) - as_date(start)).days


def _days_between_dates(start: date, end: date) -> int:
    return (end - start).days


def _whole(n: int | Decimal) -> int | None:
    if isinstance(n, Decimal):
        return int(n) if n.is_finite() and n == n.to_integral_value() else None
    return n


def add_days(day: date, n: int | Decimal) -> date | None:
    """day + n days; unknown when n is not a whole number or the result leaves the calendar."""
    whole = _whole(n)
    if whole is None:
        return None
    try:
        return day + timedelta(days=whole)
    except OverflowError:
        return None


def to_date(value: str | date) -> date | None:
    """DATE from 'YYYY-MM-DD' (anything else, e.g. a partial date '2024-UN-UN', is unknown) or a datetime."""
    if isinstance(value, str):
        if not _ISO_DATE.fullmatch(value):
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return as_date(value)


def to_datetime(value: str | datetime) -> datetime | None:
    """DATETIME from ISO 8601 text with a UTC offset; text without an offset is unknown."""
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def age(birth: date, on: date) -> int:
    """Completed years on `on`; someone born on 29 February turns a year older on 1 March."""
    return _age_dates(as_date(birth), as_date(on))


def _age_dates(b: date, d: date) -> int:
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


def round_half_up(x: int | Decimal, digits: int | Decimal = 0) -> int | Decimal | None:
    """Round half away from zero (the SAS and clinical convention, not Python's banker's rounding).

    With digits <= 0 the result is an int; a fractional `digits` is unknown.
    """
    places = _whole(digits)
    if places is None or abs(places) > CONTEXT.prec:
        return None
    try:
        rounded = Decimal(x).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=CONTEXT)
    except ArithmeticError:
        return None
    return int(rounded) if places <= 0 else rounded


def _spec(
    name: str,
    params: Sequence[frozenset[RuleType]],
    result: RuleType | None,
    impl: Callable[..., object],
    *,
    optional: int = 0,
    variadic: bool = False,
    strict: bool = True,
    same_type: bool = False,
    on_dates: Callable[..., object] | None = None,
) -> FunctionSpec:
    high = None if variadic else len(params)
    return FunctionSpec(name, tuple(params), result, impl, len(params) - optional, high, strict, same_type, on_dates)


# Builtins (abs, min, max, len, attrgetter) where they have the semantics: one Python frame less per call.
FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name: spec
    for spec in (
        _spec("is_blank", [ANY], RuleType.BOOLEAN, is_blank, strict=False),
        _spec("is_present", [ANY], RuleType.BOOLEAN, is_present, strict=False),
        _spec("coalesce", [ANY], None, coalesce, variadic=True, strict=False, same_type=True),
        _spec("days_between", [DATE_LIKE, DATE_LIKE], RuleType.NUMBER, days_between, on_dates=_days_between_dates),
        _spec("add_days", [DATE_LIKE, _NUMBER], None, add_days),
        _spec("date", [_TEXT | DATE_LIKE], RuleType.DATE, to_date),
        _spec("datetime", [_TEXT | {RuleType.DATETIME}], RuleType.DATETIME, to_datetime),
        _spec("year", [DATE_LIKE], RuleType.NUMBER, attrgetter("year")),
        _spec("age", [DATE_LIKE, DATE_LIKE], RuleType.NUMBER, age, on_dates=_age_dates),
        _spec("abs", [_NUMBER], RuleType.NUMBER, abs),
        _spec("round", [_NUMBER, _NUMBER], RuleType.NUMBER, round_half_up, optional=1),
        _spec("min", [_ORDERED, _ORDERED], None, min, variadic=True, same_type=True),
        _spec("max", [_ORDERED, _ORDERED], None, max, variadic=True, same_type=True),
        _spec("len", [_TEXT], RuleType.NUMBER, len),
    )
}
