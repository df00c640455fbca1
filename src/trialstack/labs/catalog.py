"""The study's lab tests compiled once per StudyVersion: which study test a lab's code means, how each unit a lab
sends converts to the test's unit, and the ranges to judge values by. Pure; the importer asks it a million times,
so every lookup is a dict access and every conversion a Decimal multiply computed once with pint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from trialstack.labs.ranges import ReferenceRange, select_range
from trialstack.protocol.definition import Labs, LabTest
from trialstack.terminology.units import Conversion, conversion


@dataclass
class LabCatalog:
    labs: Labs
    source: str
    codes: dict[str, LabTest]
    """Upper-cased lab code (the source's own codes, LOINC, the study code) → study test."""
    ranges: tuple[ReferenceRange, ...]
    _conversions: dict[tuple[str, str], Conversion] = field(default_factory=dict)
    _ranges: dict[tuple[str, str | None, int | None], ReferenceRange | None] = field(default_factory=dict)

    def test_for(self, code: str) -> LabTest | None:
        return self.codes.get(code.strip().upper())

    def conversion(self, test: LabTest, unit: str, to_unit: str | None = None) -> Conversion:
        """From `unit` to the test's unit (or `to_unit`); raises UnknownUnit / IncompatibleUnits, once per pair."""
        target = to_unit or test.unit
        key = (f"{test.id}|{unit}", target)
        known = self._conversions.get(key)
        if known is None:
            molar_mass = Decimal(test.molar_mass) if test.molar_mass is not None else None
            known = self._conversions[key] = conversion(unit, target, molar_mass)
        return known

    def range_for(self, test: LabTest, sex: str | None, age_years: int | None) -> ReferenceRange | None:
        key = (test.id, sex, age_years)
        if key not in self._ranges:
            self._ranges[key] = select_range(self.ranges, test.id, self.source, sex, age_years)
        return self._ranges[key]


def compile_catalog(labs: Labs, source_id: str) -> LabCatalog:
    codes: dict[str, LabTest] = {}
    source = labs.source(source_id)
    for test in labs.tests:
        codes.setdefault(test.id.upper(), test)
        for loinc in test.loinc:
            codes.setdefault(loinc, test)
    if source is not None:
        for test_id, own in source.codes.items():
            named = labs.test(test_id)
            if named is not None:
                for code in own:
                    codes[code.strip().upper()] = named
    ranges = tuple(
        ReferenceRange(
            test=r.test,
            low=Decimal(r.low) if r.low is not None else None,
            high=Decimal(r.high) if r.high is not None else None,
            critical_low=Decimal(r.critical_low) if r.critical_low is not None else None,
            critical_high=Decimal(r.critical_high) if r.critical_high is not None else None,
            unit=(labs.test(r.test) or labs.tests[0]).unit,
            sex="M" if r.sex == "M" else "F" if r.sex == "F" else None,
            age_from=r.age.start if r.age is not None else None,
            age_to=r.age.end if r.age is not None else None,
            source=r.source,
        )
        for r in labs.ranges
    )
    return LabCatalog(labs, source_id, codes, ranges)
