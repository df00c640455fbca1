"""The CTCAE criteria in trialstack.terminology.ctcae against NCI's CTCAE v5.0 workbook: same terms, MedDRA codes
and Grade 1–5 text, so a typo in the data (or a threshold read from the wrong cell) cannot go unnoticed."""

from __future__ import annotations

from dataclasses import dataclass

import openpyxl  # type: ignore[import-untyped]
import pytest

from tests.conftest import shared_data
from trialstack.terminology.ctcae import CRITERIA, CtcaeTerm

SHEET = "CTCAE v5.0 Clean Copy"


@dataclass(frozen=True)
class Row:
    meddra_code: int
    grades: tuple[str | None, ...]  # Grade 1..5; None where the workbook says '-'


@pytest.fixture(scope="module")
def workbook_rows() -> dict[str, Row]:
    path = shared_data("nci-ctcae-v5", "CTCAE_v5.0.xlsx")
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = book[SHEET].iter_rows(values_only=True)
        header = [str(cell).replace("\xa0", " ").strip() for cell in next(rows)]
        column = {
            name: header.index(name) for name in ("MedDRA Code", "CTCAE Term", *(f"Grade {g}" for g in range(1, 6)))
        }
        found: dict[str, Row] = {}
        for row in rows:
            term = row[column["CTCAE Term"]]
            if not term:
                continue
            grades = tuple(_cell(row[column[f"Grade {g}"]]) for g in range(1, 6))
            found[str(term).strip()] = Row(int(row[column["MedDRA Code"]]), grades)
        return found
    finally:
        book.close()


def _cell(value: object) -> str | None:
    text = "" if value is None else str(value)
    return None if text.strip() in ("-", "") else text


def test_the_workbook_is_the_one_the_data_was_read_from(workbook_rows: dict[str, Row]) -> None:
    assert len(workbook_rows) > 800
    assert workbook_rows["Anemia"].meddra_code == 10002272


@pytest.mark.parametrize("term", sorted(CRITERIA))
def test_term_matches_the_workbook(term: str, workbook_rows: dict[str, Row]) -> None:
    criteria: CtcaeTerm = CRITERIA[term]
    assert term in workbook_rows, f"{term!r} is not a CTCAE v5.0 term"
    row = workbook_rows[term]
    assert criteria.meddra_code == row.meddra_code
    for level in range(1, 5):
        assert criteria.criterion(level).text == row.grades[level - 1], f"{term} Grade {level}"
    assert criteria.grade_5 == row.grades[4], f"{term} Grade 5"


def test_required_terms_are_covered() -> None:
    required = {
        "Alanine aminotransferase increased",
        "Aspartate aminotransferase increased",
        "Blood bilirubin increased",
        "Creatinine increased",
        "Neutrophil count decreased",
        "Platelet count decreased",
        "Anemia",
        "Hyperkalemia",
        "Hypokalemia",
        "Hypernatremia",
        "Hyponatremia",
        "Hypoglycemia",
        "Hyperglycemia",
        "White blood cell decreased",
        "Lymphocyte count decreased",
        "Alkaline phosphatase increased",
        "Hypercalcemia",
        "Hypocalcemia",
    }
    assert required <= set(CRITERIA)


@pytest.mark.parametrize("term", sorted(CRITERIA))
def test_clinical_parts_are_quoted_from_the_grade_text(term: str) -> None:
    """What grading reports as not judged is a piece of the workbook text, not a paraphrase."""
    for level in range(1, 5):
        criterion = CRITERIA[term].criterion(level)
        for part in criterion.not_judged:
            assert criterion.text is not None and part in criterion.text, f"{term} Grade {level}: {part!r}"
