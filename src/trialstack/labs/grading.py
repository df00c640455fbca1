"""CTCAE v5.0 grade of one lab value, from the criteria data in `trialstack.terminology.ctcae`.

The grade is the highest grade whose entry threshold the value meets (see the `ctcae` docstring for how the
workbook text is read). What a value cannot tell is reported, never guessed:

- A threshold that needs a reference the caller did not give (ULN, LLN, baseline) makes the grade unknown
  only when it matters: platelets 20 × 10⁹/L is grade 4 without any LLN, 140 × 10⁹/L is not gradable without
  it. `Grading.needs` names what was missing; `Grading.at_least` keeps the grade the known thresholds prove.
- Clinical alternatives of the grades above the one found ("hospitalization indicated", "symptomatic",
  "Death") could raise the grade; they are listed in `Grading.not_judged`.
- Hyperglycemia in CTCAE v5.0 is graded by management ("Change in daily management from baseline for a
  diabetic", "Insulin therapy initiated"), not by a glucose value: its grade is always None, with that reason.
- ALT, AST, ALP, GGT and bilirubin use ULN multiples when the baseline was normal and baseline multiples when
  it was abnormal. `baseline_abnormal=None` derives it from the baseline (abnormal when above the ULN); with
  no baseline either, those grades need the baseline.
- Creatinine has ULN multiples and baseline multiples side by side and the higher grade of the two applies:
  without a baseline, a ULN grade below 3 is only a lower bound (`at_least`), since ">1.5 x baseline" or
  ">3.0 x baseline" could raise it. At screening, the screening value is its own baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from trialstack.errors import InvalidInput
from trialstack.terminology.ctcae import CRITERIA, Bound, CtcaeTerm, Direction, Reference
from trialstack.terminology.units import canonical_unit

__all__ = ["Grading", "UnknownTerm", "WrongUnit", "grade"]

_NEEDS_ORDER = ("ULN", "LLN", "baseline")


class UnknownTerm(InvalidInput):
    code = "unknown-ctcae-term"

    def __init__(self, term: str) -> None:
        super().__init__(f"CTCAE v5.0 term {term!r} has no lab grading criteria here", field="term")
        self.term = term


class WrongUnit(InvalidInput):
    """The value is not in the unit the term's thresholds are in: the caller converts first (`units.conversion`)."""

    code = "wrong-unit-for-grading"

    def __init__(self, term: str, unit: str, expected: str) -> None:
        super().__init__(f"{term} is graded in {expected}, not {unit}: convert the value first", field="unit")


@dataclass(frozen=True, slots=True)
class Grading:
    """The grade (0 = does not meet Grade 1; None = cannot be told) and the workbook text behind it.

    `needs`: references that were missing and mattered ("ULN", "LLN", "baseline"). `at_least`: when the grade
    is None, the grade the known thresholds already prove (None if not even grade 1 is proven).
    `not_judged`: clinical criteria of higher grades that a value cannot show.
    """

    term: str
    grade: int | None
    criterion: str
    needs: tuple[str, ...] = ()
    at_least: int | None = None
    not_judged: tuple[str, ...] = ()


def grade(
    term: str,
    value: Decimal,
    *,
    unit_of_value: str,
    lln: Decimal | None,
    uln: Decimal | None,
    baseline: Decimal | None = None,
    baseline_abnormal: bool | None = None,
) -> Grading:
    """Grade `value` for a CTCAE term; `lln`, `uln` and `baseline` must be in the value's unit."""
    criteria = CRITERIA.get(term)
    if criteria is None:
        raise UnknownTerm(term)
    _check_unit(criteria.term, unit_of_value)
    if lln is not None and uln is not None and lln > uln:
        raise InvalidInput(f"the LLN {lln} is above the ULN {uln}", field="lln")
    if not _gradable(criteria.term):
        return Grading(
            term,
            None,
            criteria.note or f"CTCAE v5.0 grades {term} by clinical criteria only, not by a value",
            not_judged=_clinical_above(criteria.term, 0),
        )
    references: dict[Reference, Decimal | None] = {
        Reference.ABSOLUTE: Decimal(1),
        Reference.ULN: uln,
        Reference.LLN: lln,
        Reference.BASELINE: baseline,
    }
    status = _baseline_status(criteria, baseline, baseline_abnormal, lln, uln)
    missing: set[str] = set()
    for level in (4, 3, 2, 1):
        criterion = criteria.criterion(level)
        outcomes = [_meets(bound, value, references, status) for bound in criterion.entry]
        if True in outcomes:
            text = criterion.text or ""
            not_judged = _clinical_above(criteria.term, level)
            if missing:
                needs = _ordered(missing)
                return Grading(
                    term,
                    None,
                    f"at least Grade {level} ({text}); a higher grade is possible: it needs {' and '.join(needs)}",
                    needs,
                    level,
                    not_judged,
                )
            return Grading(term, level, text, (), None, not_judged)
        missing.update(outcome for outcome in outcomes if isinstance(outcome, str))
    grade_1 = criteria.criterion(1).text or ""
    if missing:
        needs = _ordered(missing)
        return Grading(
            term,
            None,
            f"cannot tell whether Grade 1 ({grade_1}) is met without {' and '.join(needs)}",
            needs,
            None,
            _clinical_above(criteria.term, 0),
        )
    return Grading(term, 0, f"does not meet Grade 1 ({grade_1})", not_judged=_clinical_above(criteria.term, 0))


@cache
def _check_unit(term: str, unit_of_value: str) -> None:
    """Raises on a unit other than the term's (cached: the importer grades a million values in a few units)."""
    criteria = CRITERIA[term]
    unit = canonical_unit(unit_of_value)  # UnknownUnit for nonsense even when any unit would do
    if criteria.unit is not None and unit != canonical_unit(criteria.unit):
        raise WrongUnit(criteria.term, unit_of_value, criteria.unit)


def _baseline_status(
    criteria: CtcaeTerm,
    baseline: Decimal | None,
    baseline_abnormal: bool | None,
    lln: Decimal | None,
    uln: Decimal | None,
) -> str:
    """ "normal", "abnormal", or the reference missing to tell which."""
    if baseline_abnormal is not None:
        return "abnormal" if baseline_abnormal else "normal"
    if baseline is None:
        return "baseline"
    if criteria.direction is Direction.INCREASED:
        return "ULN" if uln is None else ("abnormal" if baseline > uln else "normal")
    return "LLN" if lln is None else ("abnormal" if baseline < lln else "normal")


def _meets(bound: Bound, value: Decimal, references: dict[Reference, Decimal | None], status: str) -> bool | str:
    """Whether `value` meets the bound, or the name of the missing reference that would tell."""
    if bound.when is not None:
        if status not in ("normal", "abnormal"):
            return status
        if bound.when != status:
            return False
    reference = references[bound.reference]
    if reference is None:
        return bound.reference.value
    threshold = bound.factor * reference
    match bound.op:
        case ">":
            return value > threshold
        case ">=":
            return value >= threshold
        case "<":
            return value < threshold
        case "<=":
            return value <= threshold


@cache
def _clinical_above(term: str, level: int) -> tuple[str, ...]:
    criteria = CRITERIA[term]
    parts = [
        f"Grade {higher}: {part}" for higher in range(level + 1, 5) for part in criteria.criterion(higher).not_judged
    ]
    if criteria.grade_5:
        parts.append(f"Grade 5: {criteria.grade_5}")
    return tuple(parts)


@cache
def _gradable(term: str) -> bool:
    return CRITERIA[term].gradable_from_value


def _ordered(missing: set[str]) -> tuple[str, ...]:
    return tuple(name for name in _NEEDS_ORDER if name in missing)
