"""CTCAE v5.0 grading: every boundary on the side the workbook puts it, baseline paths, missing references."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialstack.errors import InvalidInput
from trialstack.labs.grading import Grading, UnknownTerm, WrongUnit, grade
from trialstack.terminology.ctcae import CRITERIA, Direction
from trialstack.terminology.units import UnknownUnit

D = Decimal
ALT = "Alanine aminotransferase increased"
AST = "Aspartate aminotransferase increased"
ALP = "Alkaline phosphatase increased"
BILI = "Blood bilirubin increased"
CREAT = "Creatinine increased"


def graded(
    term: str,
    value: str,
    unit: str,
    *,
    lln: str | None = None,
    uln: str | None = None,
    baseline: str | None = None,
    baseline_abnormal: bool | None = None,
) -> Grading:
    return grade(
        term,
        D(value),
        unit_of_value=unit,
        lln=None if lln is None else D(lln),
        uln=None if uln is None else D(uln),
        baseline=None if baseline is None else D(baseline),
        baseline_abnormal=baseline_abnormal,
    )


# (term, unit, LLN, ULN, [(value, grade), ...]): each pair straddles a boundary of the workbook text.
BOUNDARIES: list[tuple[str, str, str | None, str | None, list[tuple[str, int]]]] = [
    (ALT, "U/L", None, "40", [("40", 0), ("40.01", 1), ("120", 1), ("120.01", 2), ("200", 2), ("200.01", 3)]),
    (ALT, "U/L", None, "40", [("800", 3), ("800.01", 4)]),
    (AST, "U/L", None, "35", [("35", 0), ("35.01", 1), ("105", 1), ("105.1", 2), ("175", 2), ("700.1", 4)]),
    (ALP, "U/L", None, "120", [("120", 0), ("121", 1), ("300", 1), ("300.1", 2), ("600", 2), ("2400.1", 4)]),
    (BILI, "mg/dL", None, "1.2", [("1.2", 0), ("1.21", 1), ("1.8", 1), ("1.81", 2), ("3.6", 2), ("12.01", 4)]),
    (BILI, "umol/L", None, "21", [("21", 0), ("31.5", 1), ("31.6", 2)]),
    ("GGT increased", "U/L", None, "60", [("60", 0), ("150", 1), ("150.1", 2)]),
    ("CPK increased", "U/L", None, "200", [("200", 0), ("500", 1), ("500.1", 2), ("2000", 3), ("2000.1", 4)]),
    ("Neutrophil count decreased", "10*9/L", "2.0", None, [("2.0", 0), ("1.99", 1), ("1.5", 1), ("1.49", 2)]),
    ("Neutrophil count decreased", "x10E9/L", "2.0", None, [("1.0", 2), ("0.99", 3), ("0.5", 3), ("0.49", 4)]),
    ("Lymphocyte count decreased", "10*9/L", "1.0", None, [("1.0", 0), ("0.8", 1), ("0.79", 2), ("0.2", 3)]),
    ("Lymphocyte count decreased", "10*9/L", "1.0", None, [("0.19", 4)]),
    ("White blood cell decreased", "10*9/L", "4.0", None, [("4.0", 0), ("3.0", 1), ("2.99", 2), ("1.0", 3)]),
    ("White blood cell decreased", "10*9/L", "4.0", None, [("0.99", 4)]),
    ("Platelet count decreased", "10*9/L", "150", None, [("150", 0), ("75", 1), ("74.9", 2), ("50", 2)]),
    ("Platelet count decreased", "10*9/L", "150", None, [("49.9", 3), ("25", 3), ("24.9", 4)]),
    ("Anemia", "g/dL", "12.0", None, [("12.0", 0), ("11.9", 1), ("10.0", 1), ("9.99", 2), ("8.0", 2), ("7.99", 3)]),
    ("Anemia", "g/dL", "12.0", None, [("2", 3)]),  # grade 4 is clinical only
    ("Hyperkalemia", "mmol/L", None, "5.0", [("5.0", 0), ("5.5", 1), ("5.51", 2), ("6.0", 2), ("6.01", 3)]),
    ("Hyperkalemia", "mmol/L", None, "5.0", [("7.0", 3), ("7.01", 4)]),
    ("Hypokalemia", "mmol/L", "3.5", None, [("3.5", 0), ("3.49", 1), ("3.0", 1), ("2.99", 3), ("2.5", 3)]),
    ("Hypokalemia", "mmol/L", "3.5", None, [("2.49", 4)]),  # grade 2 needs symptoms: never from a value
    ("Hypernatremia", "mmol/L", None, "145", [("145", 0), ("150", 1), ("150.1", 2), ("155", 2), ("155.1", 3)]),
    ("Hypernatremia", "mmol/L", None, "145", [("160", 3), ("160.1", 4)]),
    ("Hyponatremia", "mmol/L", "135", None, [("135", 0), ("134", 1), ("130", 1), ("129.9", 2), ("125", 2)]),
    ("Hyponatremia", "mmol/L", "135", None, [("124.9", 3), ("120", 3), ("119.9", 4)]),
    ("Hypoglycemia", "mg/dL", "70", None, [("70", 0), ("69", 1), ("55", 1), ("54.9", 2), ("40", 2), ("39.9", 3)]),
    ("Hypoglycemia", "mg/dL", "70", None, [("30", 3), ("29.9", 4)]),
    ("Hypercalcemia", "mg/dL", None, "10.2", [("10.2", 0), ("11.5", 1), ("11.51", 2), ("12.5", 2), ("12.51", 3)]),
    ("Hypercalcemia", "mg/dL", None, "10.2", [("13.5", 3), ("13.51", 4)]),
    ("Hypocalcemia", "mg/dL", "8.5", None, [("8.5", 0), ("8.0", 1), ("7.99", 2), ("7.0", 2), ("6.99", 3)]),
    ("Hypocalcemia", "mg/dL", "8.5", None, [("6.0", 3), ("5.99", 4)]),
    ("Hypoalbuminemia", "g/dL", "3.5", None, [("3.5", 0), ("3", 1), ("2.99", 2), ("2", 2), ("1.99", 3)]),
    ("Hypermagnesemia", "mg/dL", None, "2.4", [("2.4", 0), ("3.0", 1), ("3.01", 3), ("8.0", 3), ("8.01", 4)]),
    ("Hypomagnesemia", "mg/dL", "1.7", None, [("1.7", 0), ("1.2", 1), ("1.19", 2), ("0.9", 2), ("0.89", 3)]),
    ("Hypomagnesemia", "mg/dL", "1.7", None, [("0.7", 3), ("0.69", 4)]),
]


@pytest.mark.parametrize(
    ("term", "unit", "lln", "uln", "value", "expected"),
    [
        pytest.param(term, unit, lln, uln, value, expected, id=f"{term}-{value}")
        for term, unit, lln, uln, pairs in BOUNDARIES
        for value, expected in pairs
    ],
)
def test_boundaries(term: str, unit: str, lln: str | None, uln: str | None, value: str, expected: int) -> None:
    result = graded(term, value, unit, lln=lln, uln=uln, baseline_abnormal=False, baseline=None)
    assert result.grade == expected, result
    assert result.needs == ()
    if expected:
        assert result.criterion == CRITERIA[term].criterion(expected).text


def test_alt_grade_1_text_and_grade_0() -> None:
    result = graded(ALT, "120", "U/L", uln="40", baseline_abnormal=False)
    assert result == Grading(
        ALT,
        1,
        ">ULN - 3.0 x ULN if baseline was normal; 1.5 - 3.0 x baseline if baseline was abnormal",
        (),
        None,
        (),
    )
    assert graded(ALT, "40", "U/L", uln="40", baseline_abnormal=False).criterion.startswith("does not meet Grade 1")


@pytest.mark.parametrize(
    ("term", "baseline", "pairs"),
    [
        # 1.5 - 3.0 x baseline: 1.5 x baseline itself is grade 1 (no ">"), below it grade 0
        (ALT, "100", [("149.9", 0), ("150", 1), ("300", 1), ("300.1", 2), ("500", 2), ("500.1", 3), ("2000.1", 4)]),
        (AST, "100", [("149.9", 0), ("150", 1), ("300.1", 2)]),
        # 2.0 - 2.5 x baseline
        (ALP, "200", [("399", 0), ("400", 1), ("500", 1), ("500.1", 2), ("1000.1", 3), ("4000.1", 4)]),
        ("GGT increased", "200", [("399", 0), ("400", 1), ("500.1", 2)]),
        # > 1.0 - 1.5 x baseline
        (BILI, "2.0", [("2.0", 0), ("2.01", 1), ("3.0", 1), ("3.01", 2), ("6.01", 3), ("20.01", 4)]),
    ],
)
def test_abnormal_baseline_uses_multiples_of_baseline(term: str, baseline: str, pairs: list[tuple[str, int]]) -> None:
    unit = "mg/dL" if term == BILI else "U/L"
    for value, expected in pairs:
        result = graded(
            term, value, unit, uln="1.2" if term == BILI else "40", baseline=baseline, baseline_abnormal=True
        )
        assert result.grade == expected, (value, result)


def test_abnormal_baseline_is_derived_from_the_baseline_and_uln() -> None:
    # baseline 100 > ULN 40: abnormal, so 150 (3.75 x ULN) is grade 1 (1.5 x baseline), not grade 2
    assert graded(ALT, "150", "U/L", uln="40", baseline="100").grade == 1
    # baseline 30 <= ULN 40: normal, so ULN multiples
    assert graded(ALT, "150", "U/L", uln="40", baseline="30").grade == 2
    # an explicit answer wins over the derivation
    assert graded(ALT, "150", "U/L", uln="40", baseline="30", baseline_abnormal=True).grade == 2
    assert graded(ALT, "150", "U/L", uln="40", baseline="100", baseline_abnormal=False).grade == 2


def test_baseline_status_unknown() -> None:
    unknown = graded(ALT, "120", "U/L", uln="40")
    assert (unknown.grade, unknown.needs) == (None, ("baseline",))
    no_value = graded(ALT, "120", "U/L", uln="40", baseline_abnormal=True)
    assert (no_value.grade, no_value.needs) == (None, ("baseline",))
    no_uln = graded(ALT, "120", "U/L", baseline="30")
    assert (no_uln.grade, no_uln.needs) == (None, ("ULN",))


def test_missing_uln() -> None:
    result = graded(ALT, "120", "U/L", baseline_abnormal=False)
    assert result.grade is None
    assert result.needs == ("ULN",)
    assert "ULN" in result.criterion
    assert graded("Hyperkalemia", "5.2", "mmol/L").needs == ("ULN",)


def test_absolute_thresholds_need_no_reference() -> None:
    assert graded("Hyperkalemia", "6.5", "mmol/L").grade == 3
    platelets = graded("Platelet count decreased", "20", "10*9/L")
    assert (platelets.grade, platelets.needs) == (4, ())
    unknown = graded("Platelet count decreased", "140", "10*9/L")
    assert (unknown.grade, unknown.needs, unknown.at_least) == (None, ("LLN",), None)


def test_creatinine_takes_the_higher_of_uln_and_baseline() -> None:
    def creatinine(value: str, baseline: str | None = "0.6") -> Grading:
        return graded(CREAT, value, "mg/dL", uln="1.2", baseline=baseline)

    assert creatinine("0.9").grade == 0  # 1.5 x baseline is not "> 1.5"
    assert creatinine("0.91").grade == 2  # > 1.5 x baseline, still under the ULN
    assert creatinine("1.3").grade == 2  # ULN says 1, baseline (2.2 x) says 2
    assert creatinine("1.8", baseline="1.2").grade == 1
    assert creatinine("1.81", baseline="1.2").grade == 2
    assert creatinine("1.81").grade == 3  # > 3.0 x baseline 0.6
    assert creatinine("3.6", baseline="1.5").grade == 2
    assert creatinine("3.61", baseline="1.5").grade == 3  # > 3.0 x ULN
    assert creatinine("7.2", baseline="3").grade == 3
    assert creatinine("7.21", baseline="3").grade == 4
    # multiples work in any unit: the same patient in µmol/L
    in_si = graded(CREAT, "88.4", "umol/L", uln="106", baseline="53")
    assert in_si == creatinine("1.0") and in_si.grade == 2


def test_creatinine_without_baseline() -> None:
    at_least = graded(CREAT, "1.3", "mg/dL", uln="1.2")
    assert (at_least.grade, at_least.at_least, at_least.needs) == (None, 1, ("baseline",))
    # > 3.0 x ULN is grade 3 whatever the baseline: the baseline criteria reach grade 3 at most
    assert graded(CREAT, "3.7", "mg/dL", uln="1.2").grade == 3
    assert graded(CREAT, "7.3", "mg/dL", uln="1.2").grade == 4
    neither = graded(CREAT, "1.0", "mg/dL")
    assert (neither.grade, neither.needs) == (None, ("ULN", "baseline"))


def test_hyperglycemia_is_not_graded_from_a_value() -> None:
    result = graded("Hyperglycemia", "400", "mg/dL", uln="100", baseline="90")
    assert result.grade is None
    assert result.needs == ()
    assert "management" in result.criterion
    assert "Grade 3: Insulin therapy initiated" in result.not_judged


def test_clinical_criteria_of_higher_grades_are_reported() -> None:
    anemia = graded("Anemia", "7.5", "g/dL", lln="12")
    assert anemia.grade == 3
    assert anemia.not_judged == (
        "Grade 4: Life-threatening consequences",
        "Grade 4: urgent intervention indicated",
        "Grade 5: Death",
    )
    sodium = graded("Hyponatremia", "127", "mmol/L", lln="135")
    assert sodium.grade == 2
    assert "Grade 3: 125-129 mmol/L symptomatic" in sodium.not_judged
    potassium = graded("Hypokalemia", "3.2", "mmol/L", lln="3.5")
    assert potassium.grade == 1
    assert "Grade 2: Symptomatic with <LLN - 3.0 mmol/L" in potassium.not_judged
    assert graded(ALT, "900", "U/L", uln="40", baseline_abnormal=False).not_judged == ()


def test_unit_must_be_the_terms_unit() -> None:
    with pytest.raises(WrongUnit, match="10\\*9/L"):
        graded("Neutrophil count decreased", "1500", "/uL", lln="2.0")
    with pytest.raises(WrongUnit):
        graded("Anemia", "100", "g/L", lln="120")
    assert graded("Anemia", "9", "G/DL", lln="12").grade == 2  # the same unit, spelled otherwise
    with pytest.raises(UnknownUnit):
        graded(ALT, "100", "bananas", uln="40", baseline_abnormal=False)
    assert issubclass(WrongUnit, InvalidInput)


def test_unknown_term() -> None:
    with pytest.raises(UnknownTerm, match="Hyperfoo"):
        graded("Hyperfoo", "1", "mg/dL")


def test_lln_above_uln_is_refused() -> None:
    with pytest.raises(InvalidInput, match="LLN"):
        graded("Hypokalemia", "3", "mmol/L", lln="5.5", uln="3.5")


GRADABLE = sorted(term for term, criteria in CRITERIA.items() if criteria.gradable_from_value)
VALUES = st.decimals(min_value=D(0), max_value=D(10000), places=2, allow_nan=False, allow_infinity=False)


@given(
    term=st.sampled_from(GRADABLE),
    low=VALUES,
    high=VALUES,
    reference=st.decimals(min_value=D("0.5"), max_value=D(200), places=2),
    baseline=st.decimals(min_value=D("0.1"), max_value=D(500), places=2),
    baseline_abnormal=st.booleans(),
)
def test_grade_is_monotonic_in_the_value(
    term: str, low: Decimal, high: Decimal, reference: Decimal, baseline: Decimal, baseline_abnormal: bool
) -> None:
    """A worse value never gets a lower grade (ULN, LLN and baseline fixed)."""
    criteria = CRITERIA[term]
    unit = criteria.unit or "U/L"
    low, high = min(low, high), max(low, high)
    worse, better = (high, low) if criteria.direction is Direction.INCREASED else (low, high)
    references = {
        "lln": reference,
        "uln": reference * 2,
        "baseline": baseline,
        "baseline_abnormal": baseline_abnormal,
    }
    worse_grade = grade(term, worse, unit_of_value=unit, **references).grade  # type: ignore[arg-type]
    better_grade = grade(term, better, unit_of_value=unit, **references).grade  # type: ignore[arg-type]
    assert worse_grade is not None and better_grade is not None
    assert worse_grade >= better_grade
