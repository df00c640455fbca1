"""Reference ranges: parsing a lab's range text, choosing the range that applies, flagging a value.

Flags follow HL7 v2 table 0078 (abnormal flags): "L" below the low normal, "H" above the high normal,
"LL"/"HH" beyond the critical (panic) limits; None within range. All comparisons are strict: a value equal
to a limit is within it, as "3.5-5.1" means 3.5 and 5.1 are normal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from trialstack.errors import InvalidInput

__all__ = ["ReferenceRange", "flag", "parse_range", "select_range"]

_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+"
_BETWEEN = re.compile(rf"^\s*(?P<low>{_NUMBER})\s*(?:-|–|—|to)\s*(?P<high>{_NUMBER})(?![\d.,])", re.IGNORECASE)
_BOUND = re.compile(rf"^\s*(?P<op><=|>=|=<|=>|<|>|≤|≥)\s*(?P<value>{_NUMBER})(?![\d.,])")


def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def parse_range(text: str) -> tuple[Decimal | None, Decimal | None] | None:
    """`(low, high)` from a lab's range text; None when the text is no numeric range ("Negative", "see note").

    "3.5-5.1", "3.5 - 5.1", "150,000-450,000" -> both limits; "<5", "<=5" -> (None, 5); ">60", ">=60" ->
    (60, None). Whatever follows the range (a unit, ": comment") is ignored. Whether "<" or "<=" was written is
    not kept: flags treat every limit as inclusive, which is what labs mean by "<5" on a printed report.
    InvalidInput when the low limit is above the high one.
    """
    between = _BETWEEN.match(text)
    if between:
        low, high = _number(between["low"]), _number(between["high"])
        if low > high:
            raise InvalidInput(f"reference range {text!r} has its low limit above its high limit", field="range")
        return low, high
    bound = _BOUND.match(text)
    if bound:
        value = _number(bound["value"])
        return (None, value) if bound["op"] in ("<", "<=", "=<", "≤") else (value, None)
    return None


def flag(
    value: Decimal,
    low: Decimal | None,
    high: Decimal | None,
    critical_low: Decimal | None = None,
    critical_high: Decimal | None = None,
) -> Literal["LL", "L", "H", "HH"] | None:
    """The HL7 0078 flag of `value`: LL/HH beyond a critical limit, L/H outside the normal range, else None."""
    if critical_low is not None and value < critical_low:
        return "LL"
    if critical_high is not None and value > critical_high:
        return "HH"
    if low is not None and value < low:
        return "L"
    if high is not None and value > high:
        return "H"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceRange:
    """A normal (and optionally critical) range of one test, possibly for one lab, one sex, one age band.

    `age_from` is inclusive and `age_to` exclusive, in whole years, so bands [18, 65) and [65, None) meet
    without overlap. `source` is the lab that reports it; None means any lab. Keyword-only: ranges are
    written once in configuration and read many times.
    """

    test: str
    low: Decimal | None
    high: Decimal | None
    critical_low: Decimal | None = None
    critical_high: Decimal | None = None
    unit: str
    sex: Literal["M", "F"] | None = None
    age_from: int | None = None
    age_to: int | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise InvalidInput(f"{self.test}: low {self.low} is above high {self.high}", field="low")
        if self.critical_low is not None and self.low is not None and self.critical_low > self.low:
            raise InvalidInput(
                f"{self.test}: critical low {self.critical_low} is above low {self.low}", field="critical_low"
            )
        if self.critical_high is not None and self.high is not None and self.critical_high < self.high:
            raise InvalidInput(
                f"{self.test}: critical high {self.critical_high} is below high {self.high}", field="critical_high"
            )
        if self.sex not in ("M", "F", None):
            raise InvalidInput(f"{self.test}: sex must be 'M', 'F' or None, not {self.sex!r}", field="sex")
        if self.age_from is not None and self.age_to is not None and self.age_from >= self.age_to:
            raise InvalidInput(f"{self.test}: empty age band [{self.age_from}, {self.age_to})", field="age_to")

    def applies_to(self, test: str, source: str | None, sex: str | None, age_years: int | None) -> bool:
        """A sex- or age-specific range never applies when the subject's sex or age is unknown."""
        if self.test != test or (self.source is not None and self.source != source):
            return False
        if self.sex is not None and self.sex != sex:
            return False
        if self.age_from is not None and (age_years is None or age_years < self.age_from):
            return False
        return not (self.age_to is not None and (age_years is None or age_years >= self.age_to))

    def flag(self, value: Decimal) -> Literal["LL", "L", "H", "HH"] | None:
        return flag(value, self.low, self.high, self.critical_low, self.critical_high)


def select_range(
    ranges: Iterable[ReferenceRange], test: str, source: str | None, sex: str | None, age_years: int | None
) -> ReferenceRange | None:
    """The most specific range that applies, or None.

    Specificity, in this order: the reporting lab's own range over a range for any lab (a lab's range is
    calibrated to its method); then sex-specific over unisex; then age-banded over unbanded, a narrower band
    over a wider one. Two applicable ranges equally specific are a configuration error (InvalidInput):
    choosing one silently would flag the same value differently depending on load order.
    """
    applicable = [candidate for candidate in ranges if candidate.applies_to(test, source, sex, age_years)]
    if not applicable:
        return None
    ranked = sorted(applicable, key=_specificity, reverse=True)
    if len(ranked) > 1 and _specificity(ranked[0]) == _specificity(ranked[1]) and ranked[0] != ranked[1]:
        raise InvalidInput(
            f"two {test} reference ranges apply equally to source={source!r} sex={sex!r} age={age_years}: "
            f"{ranked[0]} and {ranked[1]}",
            field="ranges",
        )
    return ranked[0]


def _specificity(candidate: ReferenceRange) -> tuple[bool, bool, bool, float]:
    banded = candidate.age_from is not None or candidate.age_to is not None
    width = (
        float(candidate.age_to - candidate.age_from)
        if candidate.age_from is not None and candidate.age_to is not None
        else float("inf")
    )
    return (candidate.source is not None, candidate.sex is not None, banded, -width)
