"""Laboratory: the study's lab tests (LOINC codes, standard unit, CTCAE terms), reference ranges per lab, sex and
age band, the laboratories that send results, and what reconciliation expects.

A result arrives in the lab's own code and unit; the `labs` context maps the code to one of these tests, converts
the value to the test's `unit` (UCUM), flags it against the most specific range and grades it with the test's
CTCAE terms (docs/labs.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import ConfigDict, Field, NonNegativeInt, PositiveInt, StringConstraints, model_validator

from trialstack.protocol.definition_base import Identifier, Number, ProtocolModel, Text

Loinc = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,7}-[0-9]$")]
ItemRef = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*\.[A-Z][A-Z0-9_]*$")]
"""`FORM.ITEM`: the EDC item a site records the local-lab value of the same test in."""


class LabTest(ProtocolModel):
    """One test the study measures: `id` is its study code (SDTM LBTESTCD style), `unit` the standard unit every
    result is converted to, `molar_mass` (g/mol) what converts mass to amount of substance (mg/dL to umol/L)."""

    id: Identifier
    name: Text
    loinc: tuple[Loinc, ...] = ()
    unit: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    decimals: NonNegativeInt = 2
    molar_mass: Number | None = None
    ctcae: tuple[Text, ...] = ()
    """CTCAE v5.0 terms the value is graded by (e.g. Hyperkalemia and Hypokalemia for potassium)."""
    local_item: ItemRef | None = None
    local_tolerance_percent: Number = Decimal(10)
    """A local-lab value in the EDC differing from the central value by more than this opens a query."""


class AgeBand(ProtocolModel):
    """Ages `from` (inclusive) to `to` (exclusive), in whole years; either may be left out."""

    model_config = ConfigDict(frozen=True, extra="forbid", serialize_by_alias=True)
    start: NonNegativeInt | None = Field(default=None, alias="from")
    end: PositiveInt | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> AgeBand:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"age band ends at {self.end}, not after its start {self.start}")
        return self


class LabRange(ProtocolModel):
    """A reference range in the test's standard unit; `source`, `sex` and `age` narrow where it applies (the
    most specific range that applies wins). `critical_low`/`critical_high` turn L/H flags into LL/HH."""

    test: Identifier
    low: Number | None = None
    high: Number | None = None
    critical_low: Number | None = None
    critical_high: Number | None = None
    source: Identifier | None = None
    sex: Annotated[str, StringConstraints(pattern=r"^[MF]$")] | None = None
    age: AgeBand | None = None

    @model_validator(mode="after")
    def _bounded(self) -> LabRange:
        if self.low is None and self.high is None:
            raise ValueError("a range needs low, high or both")
        if self.low is not None and self.high is not None and self.high < self.low:
            raise ValueError(f"high {self.high} is below low {self.low}")
        return self


class LabSource(ProtocolModel):
    """A laboratory that sends results (`--source` on import). `codes` maps a study test to the lab's own codes
    when the lab does not send LOINC; `central` labs are the ones reconciliation compares the EDC with."""

    id: Identifier
    name: Text
    central: bool = True
    codes: dict[Identifier, tuple[Annotated[str, StringConstraints(min_length=1, max_length=40)], ...]] = {}


class LabExpectations(ProtocolModel):
    """Central samples the protocol expects: at these visits, missing once `missing_after_days` have passed since
    the visit; a sample counts for a visit when taken up to `days_before_visit` days before it (or on the day)."""

    visits: tuple[Identifier, ...] = ()
    missing_after_days: PositiveInt = 7
    days_before_visit: NonNegativeInt = 3


class Labs(ProtocolModel):
    tests: tuple[LabTest, ...] = Field(min_length=1)
    ranges: tuple[LabRange, ...] = ()
    sources: tuple[LabSource, ...] = Field(min_length=1)
    expected: LabExpectations = LabExpectations()
    alert_grade: Annotated[int, Field(ge=1, le=5)] = 3
    """A graded value at or above this CTCAE grade alerts the investigator and proposes an adverse event."""

    def test(self, test_id: str) -> LabTest | None:
        return next((test for test in self.tests if test.id == test_id), None)

    def source(self, source_id: str) -> LabSource | None:
        return next((source for source in self.sources if source.id == source_id), None)
