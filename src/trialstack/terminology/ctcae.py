"""CTCAE v5.0 lab criteria as data (NCI, November 2017, sheet "CTCAE v5.0 Clean Copy").

Each `CtcaeTerm` keeps the workbook's Grade 1–4 text VERBATIM (a test compares it with the xlsx) next to
the numeric reading of that text, so a reviewer can check one against the other line by line.

How the text is read:
- A grade is a band "entry - limit"; its limit is the next grade's entry, so only the ENTRY of each grade is
  stored (`Bound`) and the grade of a value is the highest grade whose entry it meets. The comparator is
  the workbook's: ">3.0 - 5.0 x ULN" enters grade 2 strictly above 3.0 × ULN (3.0 × ULN itself is grade 1);
  "1.5 - 3.0 x baseline" (no ">") enters at 1.5 × baseline inclusive.
- Semicolons separate alternatives (any one suffices). Alternatives in another unit ("<LLN - 6.2 mmol/L"
  beside "<LLN - 10.0 g/dL") are the same threshold restated and are NOT used: each term is graded in ONE
  unit (`CtcaeTerm.unit`) and the caller converts first. The restated figures are rounded (55 mg/dL glucose
  is 3.05 mmol/L, the workbook says 3.0), so grading in the first-listed unit is the faithful choice.
- Clinical alternatives ("hospitalization indicated", "symptomatic", "Death", ...) cannot be judged from a
  value: they are listed in `GradeCriterion.not_judged` and grading reports them instead of guessing.
- `unit is None` marks terms whose thresholds are all multiples of ULN/LLN/baseline: any unit works, as
  long as the value, ULN, LLN and baseline share it.
- Integer bands ("125-129 mmol/L", "120-124") are read as contiguous: grade 3 hyponatremia enters below 125.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

__all__ = ["CRITERIA", "Bound", "CtcaeTerm", "Direction", "GradeCriterion", "Reference"]


class Reference(StrEnum):
    """What a threshold is a multiple of (ABSOLUTE: a plain value in the term's unit)."""

    ABSOLUTE = "absolute"
    ULN = "ULN"
    LLN = "LLN"
    BASELINE = "baseline"


class Direction(StrEnum):
    INCREASED = "increased"
    DECREASED = "decreased"


@dataclass(frozen=True, slots=True)
class Bound:
    """Entry into a grade: `value <op> factor × reference`.

    `when` restricts the bound to patients whose baseline was "normal" or "abnormal" (ALT, AST, ALP, GGT,
    bilirubin); None applies to everyone.
    """

    op: Literal[">", ">=", "<", "<="]
    factor: Decimal
    reference: Reference
    when: Literal["normal", "abnormal"] | None = None


@dataclass(frozen=True, slots=True)
class GradeCriterion:
    """One grade: the workbook text (None where the workbook says '-'), its numeric entries, the rest."""

    text: str | None
    entry: tuple[Bound, ...] = ()
    not_judged: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CtcaeTerm:
    term: str
    meddra_code: int
    direction: Direction
    unit: str | None
    grades: tuple[GradeCriterion, GradeCriterion, GradeCriterion, GradeCriterion]
    grade_5: str | None = "Death"
    analyte: str = ""
    note: str = ""

    def criterion(self, grade: int) -> GradeCriterion:
        return self.grades[grade - 1]

    @property
    def gradable_from_value(self) -> bool:
        return any(criterion.entry for criterion in self.grades)


def _d(text: str) -> Decimal:
    return Decimal(text)


def _gt(
    factor: str, reference: Reference = Reference.ABSOLUTE, when: Literal["normal", "abnormal"] | None = None
) -> Bound:
    return Bound(">", _d(factor), reference, when)


def _ge(
    factor: str, reference: Reference = Reference.ABSOLUTE, when: Literal["normal", "abnormal"] | None = None
) -> Bound:
    return Bound(">=", _d(factor), reference, when)


def _lt(factor: str, reference: Reference = Reference.ABSOLUTE) -> Bound:
    return Bound("<", _d(factor), reference)


ULN, LLN, BASELINE = Reference.ULN, Reference.LLN, Reference.BASELINE
UP, DOWN = Direction.INCREASED, Direction.DECREASED
_G = GradeCriterion


def _baseline_dependent(
    entries_1: tuple[Bound, Bound], multiples: tuple[str, str, str], texts: tuple[str, str, str, str]
) -> tuple[GradeCriterion, GradeCriterion, GradeCriterion, GradeCriterion]:
    """ALT, AST, ALP, GGT, bilirubin: grades 2-4 enter above the same multiple of ULN (baseline normal) or of
    the baseline (baseline abnormal); grade 1 differs per term."""
    two, three, four = multiples
    return (
        _G(texts[0], entries_1),
        _G(texts[1], (_gt(two, ULN, "normal"), _gt(two, BASELINE, "abnormal"))),
        _G(texts[2], (_gt(three, ULN, "normal"), _gt(three, BASELINE, "abnormal"))),
        _G(texts[3], (_gt(four, ULN, "normal"), _gt(four, BASELINE, "abnormal"))),
    )


_TERMS: tuple[CtcaeTerm, ...] = (
    # --- Investigations: liver enzymes and bilirubin (multiples: any unit) ---
    CtcaeTerm(
        "Alanine aminotransferase increased",
        10001551,
        UP,
        None,
        _baseline_dependent(
            (_gt("1", ULN, "normal"), _ge("1.5", BASELINE, "abnormal")),
            ("3.0", "5.0", "20.0"),
            (
                ">ULN - 3.0 x ULN if baseline was normal; 1.5 - 3.0 x baseline if baseline was abnormal",
                ">3.0 - 5.0 x ULN if baseline was normal; >3.0 - 5.0 x baseline if baseline was abnormal",
                ">5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x baseline if baseline was abnormal",
                ">20.0 x ULN if baseline was normal; >20.0 x baseline if baseline was abnormal",
            ),
        ),
        grade_5=None,
        analyte="ALT",
    ),
    CtcaeTerm(
        "Aspartate aminotransferase increased",
        10003481,
        UP,
        None,
        _baseline_dependent(
            (_gt("1", ULN, "normal"), _ge("1.5", BASELINE, "abnormal")),
            ("3.0", "5.0", "20.0"),
            (
                ">ULN - 3.0 x ULN if baseline was normal; 1.5 - 3.0 x baseline if baseline was abnormal",
                ">3.0 - 5.0 x ULN if baseline was normal; >3.0 - 5.0 x baseline if baseline was abnormal",
                ">5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x baseline if baseline was abnormal",
                ">20.0 x ULN if baseline was normal; >20.0 x baseline if baseline was abnormal",
            ),
        ),
        grade_5=None,
        analyte="AST",
    ),
    CtcaeTerm(
        "Alkaline phosphatase increased",
        10001675,
        UP,
        None,
        _baseline_dependent(
            (_gt("1", ULN, "normal"), _ge("2.0", BASELINE, "abnormal")),
            ("2.5", "5.0", "20.0"),
            (
                ">ULN - 2.5 x ULN if baseline was normal; 2.0 - 2.5 x baseline if baseline was abnormal",
                ">2.5 - 5.0 x ULN if baseline was normal; >2.5 - 5.0 x baseline if baseline was abnormal",
                ">5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x baseline if baseline was abnormal",
                ">20.0 x ULN if baseline was normal; >20.0 x baseline if baseline was abnormal",
            ),
        ),
        grade_5=None,
        analyte="ALP",
    ),
    CtcaeTerm(
        "GGT increased",
        10056910,
        UP,
        None,
        _baseline_dependent(
            (_gt("1", ULN, "normal"), _ge("2.0", BASELINE, "abnormal")),
            ("2.5", "5.0", "20.0"),
            (
                ">ULN - 2.5 x ULN if baseline was normal; 2.0 - 2.5 x baseline if baseline was abnormal",
                ">2.5 - 5.0 x ULN if baseline was normal; >2.5 - 5.0 x baseline if baseline was abnormal",
                ">5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x baseline if baseline was abnormal",
                ">20.0 x ULN if baseline was normal; >20.0 x baseline if baseline was abnormal",
            ),
        ),
        grade_5=None,
        analyte="GGT",
    ),
    CtcaeTerm(
        "Blood bilirubin increased",
        10005364,
        UP,
        None,
        _baseline_dependent(
            (_gt("1", ULN, "normal"), _gt("1.0", BASELINE, "abnormal")),
            ("1.5", "3.0", "10.0"),
            (
                ">ULN - 1.5 x ULN if baseline was normal; > 1.0 - 1.5 x baseline if baseline was abnormal",
                ">1.5 - 3.0 x ULN if baseline was normal; >1.5 - 3.0 x baseline if baseline was abnormal",
                ">3.0 - 10.0 x ULN if baseline was normal; >3.0 - 10.0 x baseline if baseline was abnormal",
                ">10.0 x ULN if baseline was normal; >10.0 x baseline if baseline was abnormal",
            ),
        ),
        grade_5=None,
        analyte="total bilirubin",
    ),
    # --- Creatinine: ULN multiples AND baseline multiples; the higher grade wins ---
    CtcaeTerm(
        "Creatinine increased",
        10011368,
        UP,
        None,
        (
            _G(">ULN - 1.5 x ULN", (_gt("1", ULN),)),
            _G(">1.5 - 3.0 x baseline; >1.5 - 3.0 x ULN", (_gt("1.5", BASELINE), _gt("1.5", ULN))),
            _G(">3.0 x baseline; >3.0 - 6.0 x ULN", (_gt("3.0", BASELINE), _gt("3.0", ULN))),
            _G(">6.0 x ULN", (_gt("6.0", ULN),)),
        ),
        grade_5=None,
        analyte="serum creatinine",
    ),
    CtcaeTerm(
        "CPK increased",
        10011268,
        UP,
        None,
        (
            _G(">ULN - 2.5 x ULN", (_gt("1", ULN),)),
            _G(">2.5 x ULN - 5 x ULN", (_gt("2.5", ULN),)),
            _G(">5 x ULN - 10 x ULN", (_gt("5", ULN),)),
            _G(">10 x ULN", (_gt("10", ULN),)),
        ),
        grade_5=None,
        analyte="creatine phosphokinase",
    ),
    # --- Investigations: blood counts, graded in 10*9/L (the workbook also gives /mm3) ---
    CtcaeTerm(
        "Neutrophil count decreased",
        10029366,
        DOWN,
        "10*9/L",
        (
            _G("<LLN - 1500/mm3; <LLN - 1.5 x 10e9 /L", (_lt("1", LLN),)),
            _G("<1500 - 1000/mm3; <1.5 - 1.0 x 10e9 /L", (_lt("1.5"),)),
            _G("<1000 - 500/mm3; <1.0 - 0.5 x 10e9 /L", (_lt("1.0"),)),
            _G("<500/mm3; <0.5 x 10e9 /L", (_lt("0.5"),)),
        ),
        grade_5=None,
        analyte="absolute neutrophil count",
    ),
    CtcaeTerm(
        "Lymphocyte count decreased",
        10025256,
        DOWN,
        "10*9/L",
        (
            _G("<LLN - 800/mm3; <LLN - 0.8 x 10e9/L", (_lt("1", LLN),)),
            _G("<800 - 500/mm3; <0.8 - 0.5 x 10e9 /L", (_lt("0.8"),)),
            _G("<500 - 200/mm3; <0.5 - 0.2 x 10e9 /L", (_lt("0.5"),)),
            _G("<200/mm3; <0.2 x 10e9 /L", (_lt("0.2"),)),
        ),
        grade_5=None,
        analyte="absolute lymphocyte count",
    ),
    CtcaeTerm(
        "White blood cell decreased",
        10049182,
        DOWN,
        "10*9/L",
        (
            _G("<LLN - 3000/mm3; <LLN - 3.0 x 10e9 /L", (_lt("1", LLN),)),
            _G("<3000 - 2000/mm3; <3.0 - 2.0 x 10e9 /L", (_lt("3.0"),)),
            _G("<2000 - 1000/mm3; <2.0 - 1.0 x 10e9 /L", (_lt("2.0"),)),
            _G("<1000/mm3; <1.0 x 10e9 /L", (_lt("1.0"),)),
        ),
        grade_5=None,
        analyte="white blood cell count",
    ),
    CtcaeTerm(
        "Platelet count decreased",
        10035528,
        DOWN,
        "10*9/L",
        (
            _G("<LLN - 75,000/mm3; <LLN - 75.0 x 10e9 /L", (_lt("1", LLN),)),
            _G("<75,000 - 50,000/mm3; <75.0 - 50.0 x 10e9 /L", (_lt("75.0"),)),
            _G("<50,000 - 25,000/mm3; <50.0 - 25.0 x 10e9 /L", (_lt("50.0"),)),
            _G("<25,000/mm3; <25.0 x 10e9 /L", (_lt("25.0"),)),
        ),
        grade_5=None,
        analyte="platelet count",
    ),
    # --- Blood and lymphatic system disorders ---
    CtcaeTerm(
        "Anemia",
        10002272,
        DOWN,
        "g/dL",
        (
            _G("Hemoglobin (Hgb) <LLN - 10.0 g/dL; <LLN - 6.2 mmol/L; <LLN - 100 g/L", (_lt("1", LLN),)),
            _G("Hgb <10.0 - 8.0 g/dL; <6.2 - 4.9 mmol/L; <100 - 80g/L", (_lt("10.0"),)),
            _G("Hgb <8.0 g/dL; <4.9 mmol/L; <80 g/L; transfusion indicated", (_lt("8.0"),), ("transfusion indicated",)),
            _G(
                "Life-threatening consequences; urgent intervention indicated",
                (),
                ("Life-threatening consequences", "urgent intervention indicated"),
            ),
        ),
        analyte="hemoglobin",
    ),
    # --- Metabolism and nutrition disorders: electrolytes (mmol/L), glucose and calcium (mg/dL) ---
    CtcaeTerm(
        "Hyperkalemia",
        10020647,
        UP,
        "mmol/L",
        (
            _G(">ULN - 5.5 mmol/L", (_gt("1", ULN),)),
            _G(">5.5 - 6.0 mmol/L; intervention initiated", (_gt("5.5"),), ("intervention initiated",)),
            _G(">6.0 - 7.0 mmol/L; hospitalization indicated", (_gt("6.0"),), ("hospitalization indicated",)),
            _G(">7.0 mmol/L; life-threatening consequences", (_gt("7.0"),), ("life-threatening consequences",)),
        ),
        analyte="potassium",
    ),
    CtcaeTerm(
        "Hypokalemia",
        10021018,
        DOWN,
        "mmol/L",
        (
            _G("<LLN - 3.0 mmol/L", (_lt("1", LLN),)),
            _G(
                "Symptomatic with <LLN - 3.0 mmol/L; intervention indicated",
                (),
                ("Symptomatic with <LLN - 3.0 mmol/L", "intervention indicated"),
            ),
            _G("<3.0 - 2.5 mmol/L; hospitalization indicated", (_lt("3.0"),), ("hospitalization indicated",)),
            _G("<2.5 mmol/L; life-threatening consequences", (_lt("2.5"),), ("life-threatening consequences",)),
        ),
        analyte="potassium",
    ),
    CtcaeTerm(
        "Hypernatremia",
        10020680,
        UP,
        "mmol/L",
        (
            _G(">ULN - 150 mmol/L", (_gt("1", ULN),)),
            _G(">150 - 155 mmol/L; intervention initiated", (_gt("150"),), ("intervention initiated",)),
            _G(">155 - 160 mmol/L; hospitalization indicated", (_gt("155"),), ("hospitalization indicated",)),
            _G(">160 mmol/L; life-threatening consequences", (_gt("160"),), ("life-threatening consequences",)),
        ),
        analyte="sodium",
    ),
    CtcaeTerm(
        "Hyponatremia",
        10021038,
        DOWN,
        "mmol/L",
        (
            _G("<LLN - 130 mmol/L", (_lt("1", LLN),)),
            _G("125-129 mmol/L and asymptomatic", (_lt("130"),)),
            _G(
                "125-129 mmol/L symptomatic; 120-124 mmol/L regardless of symptoms",
                (_lt("125"),),
                ("125-129 mmol/L symptomatic",),
            ),
            _G("<120 mmol/L; life-threatening consequences", (_lt("120"),), ("life-threatening consequences",)),
        ),
        analyte="sodium",
        note="Grade 2 assumes the patient is asymptomatic: 125-129 mmol/L with symptoms is grade 3.",
    ),
    CtcaeTerm(
        "Hypoglycemia",
        10021005,
        DOWN,
        "mg/dL",
        (
            _G("<LLN - 55 mg/dL; <LLN - 3.0 mmol/L", (_lt("1", LLN),)),
            _G("<55 - 40 mg/dL; <3.0 - 2.2 mmol/L", (_lt("55"),)),
            _G("<40 - 30 mg/dL; <2.2 - 1.7 mmol/L", (_lt("40"),)),
            _G(
                "<30 mg/dL; <1.7 mmol/L; life-threatening consequences; seizures",
                (_lt("30"),),
                ("life-threatening consequences", "seizures"),
            ),
        ),
        analyte="glucose",
    ),
    CtcaeTerm(
        "Hyperglycemia",
        10020639,
        UP,
        "mg/dL",
        (
            _G(
                "Abnormal glucose above baseline with no medical intervention",
                (),
                ("Abnormal glucose above baseline with no medical intervention",),
            ),
            _G(
                "Change in daily management from baseline for a diabetic; oral antiglycemic agent initiated; "
                "workup for diabetes",
                (),
                (
                    "Change in daily management from baseline for a diabetic",
                    "oral antiglycemic agent initiated",
                    "workup for diabetes",
                ),
            ),
            _G(
                "Insulin therapy initiated; hospitalization indicated",
                (),
                ("Insulin therapy initiated", "hospitalization indicated"),
            ),
            _G(
                "Life-threatening consequences; urgent intervention indicated",
                (),
                ("Life-threatening consequences", "urgent intervention indicated"),
            ),
        ),
        analyte="glucose",
        note=(
            'CTCAE v5.0 grades hyperglycemia by its management (e.g. "Change in daily management from baseline for a'
            ' diabetic", "Insulin therapy initiated"), not by a glucose value: no grade can be derived from a value'
        ),
    ),
    CtcaeTerm(
        "Hypercalcemia",
        10020587,
        UP,
        "mg/dL",
        (
            _G(
                "Corrected serum calcium of >ULN - 11.5 mg/dL; >ULN - 2.9 mmol/L; Ionized calcium >ULN - 1.5 mmol/L",
                (_gt("1", ULN),),
            ),
            _G(
                "Corrected serum calcium of >11.5 - 12.5 mg/dL; >2.9 - 3.1 mmol/L; Ionized calcium >1.5 - 1.6 mmol/L; "
                "symptomatic",
                (_gt("11.5"),),
                ("symptomatic",),
            ),
            _G(
                "Corrected serum calcium of >12.5 - 13.5 mg/dL; >3.1 - 3.4 mmol/L; Ionized calcium >1.6 - 1.8 mmol/L; "
                "hospitalization indicated",
                (_gt("12.5"),),
                ("hospitalization indicated",),
            ),
            _G(
                "Corrected serum calcium of >13.5 mg/dL; >3.4 mmol/L; Ionized calcium >1.8 mmol/L; "
                "life-threatening consequences",
                (_gt("13.5"),),
                ("life-threatening consequences",),
            ),
        ),
        analyte="albumin-corrected serum calcium",
        note="Graded on corrected serum calcium only; the ionized calcium thresholds (mmol/L) are not used.",
    ),
    CtcaeTerm(
        "Hypocalcemia",
        10020949,
        DOWN,
        "mg/dL",
        (
            _G(
                "Corrected serum calcium of <LLN - 8.0 mg/dL; <LLN - 2.0 mmol/L; Ionized calcium <LLN - 1.0 mmol/L",
                (_lt("1", LLN),),
            ),
            _G(
                "Corrected serum calcium of <8.0 - 7.0 mg/dL; <2.0 - 1.75 mmol/L; Ionized calcium <1.0 - 0.9 mmol/L; "
                "symptomatic",
                (_lt("8.0"),),
                ("symptomatic",),
            ),
            _G(
                "Corrected serum calcium of <7.0 - 6.0 mg/dL; <1.75 - 1.5 mmol/L; Ionized calcium <0.9 - 0.8 mmol/L; "
                "hospitalization indicated",
                (_lt("7.0"),),
                ("hospitalization indicated",),
            ),
            _G(
                "Corrected serum calcium of <6.0 mg/dL; <1.5 mmol/L; Ionized calcium <0.8 mmol/L; "
                "life-threatening consequences",
                (_lt("6.0"),),
                ("life-threatening consequences",),
            ),
        ),
        analyte="albumin-corrected serum calcium",
        note="Graded on corrected serum calcium only; the ionized calcium thresholds (mmol/L) are not used.",
    ),
    CtcaeTerm(
        "Hypoalbuminemia",
        10020943,
        DOWN,
        "g/dL",
        (
            _G("<LLN - 3 g/dL; <LLN - 30 g/L", (_lt("1", LLN),)),
            _G("<3 - 2 g/dL; <30 - 20 g/L", (_lt("3"),)),
            _G("<2 g/dL; <20 g/L", (_lt("2"),)),
            _G(
                "Life-threatening consequences; urgent intervention indicated",
                (),
                ("Life-threatening consequences", "urgent intervention indicated"),
            ),
        ),
        analyte="albumin",
    ),
    CtcaeTerm(
        "Hypermagnesemia",
        10020670,
        UP,
        "mg/dL",
        (
            _G(">ULN - 3.0 mg/dL; >ULN - 1.23 mmol/L", (_gt("1", ULN),)),
            _G(None),
            _G(">3.0 - 8.0 mg/dL; >1.23 - 3.30 mmol/L", (_gt("3.0"),)),
            _G(
                ">8.0 mg/dL; >3.30 mmol/L; life-threatening consequences",
                (_gt("8.0"),),
                ("life-threatening consequences",),
            ),
        ),
        analyte="magnesium",
    ),
    CtcaeTerm(
        "Hypomagnesemia",
        10021028,
        DOWN,
        "mg/dL",
        (
            _G("<LLN - 1.2 mg/dL; <LLN - 0.5 mmol/L", (_lt("1", LLN),)),
            _G("<1.2 - 0.9 mg/dL; <0.5 - 0.4 mmol/L", (_lt("1.2"),)),
            _G("<0.9 - 0.7 mg/dL; <0.4 - 0.3 mmol/L", (_lt("0.9"),)),
            _G(
                "<0.7 mg/dL; <0.3 mmol/L; life-threatening consequences",
                (_lt("0.7"),),
                ("life-threatening consequences",),
            ),
        ),
        analyte="magnesium",
    ),
)

#: The criteria by CTCAE term, exactly as spelled in the workbook.
CRITERIA: Mapping[str, CtcaeTerm] = {term.term: term for term in _TERMS}
