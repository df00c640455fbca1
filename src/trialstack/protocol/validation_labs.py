"""Does the `labs` section hold together? Tests, laboratories and ranges named once and known, expected visits in
the schedule, local-lab items on their forms, and numeric ranges on numeric items."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from trialstack.errors import InvalidInput
from trialstack.protocol.definition import LabTest, StudyDefinition
from trialstack.protocol.problems import Finding
from trialstack.terminology.ctcae import CRITERIA
from trialstack.terminology.units import conversion, is_known_unit


def _known(ids: set[str]) -> str:
    return ", ".join(sorted(ids)) or "none declared"


def _test_terms(n: int, test: LabTest) -> Iterator[Finding]:
    """The test's unit is a unit, and each CTCAE term is one the grader knows, in a unit the test's converts to."""
    if not is_known_unit(test.unit):
        yield Finding(f"/labs/tests/{n}/unit", f"unknown unit '{test.unit}': use UCUM, such as mg/dL, mmol/L, 10*9/L")
        return
    molar_mass = Decimal(test.molar_mass) if test.molar_mass is not None else None
    for k, term in enumerate(test.ctcae):
        criteria = CRITERIA.get(term)
        if criteria is None:
            known = ", ".join(sorted(CRITERIA))
            yield Finding(f"/labs/tests/{n}/ctcae/{k}", f"no CTCAE v5.0 lab grading for '{term}' (known: {known})")
        elif criteria.unit is not None:
            try:
                conversion(test.unit, criteria.unit, molar_mass)
            except InvalidInput as error:
                yield Finding(f"/labs/tests/{n}/ctcae/{k}", f"{term} is graded in {criteria.unit}: {error.message}")


def check_labs(definition: StudyDefinition) -> Iterator[Finding]:
    labs = definition.labs
    if labs is None:
        return
    tests = {test.id for test in labs.tests}
    sources = {source.id for source in labs.sources}
    seen: set[str] = set()
    codes: dict[str, str] = {}
    for n, test in enumerate(labs.tests):
        yield from _test_terms(n, test)
        if test.id in seen:
            yield Finding(f"/labs/tests/{n}/id", f"lab test {test.id} is declared twice")
        seen.add(test.id)
        for k, loinc in enumerate(test.loinc):
            if codes.setdefault(loinc, test.id) != test.id:
                yield Finding(f"/labs/tests/{n}/loinc/{k}", f"LOINC {loinc} already maps to test {codes[loinc]}")
        if test.local_item is not None:
            form_id, item_id = test.local_item.split(".")
            form = definition.form(form_id)
            if form is None:
                yield Finding(f"/labs/tests/{n}/local_item", f"unknown form '{form_id}'")
            elif form.item(item_id) is None:
                yield Finding(f"/labs/tests/{n}/local_item", f"form {form_id} has no item '{item_id}'")
    for n, source in enumerate(labs.sources):
        for test_id in source.codes:
            if test_id not in tests:
                yield Finding(
                    f"/labs/sources/{n}/codes/{test_id}", f"unknown lab test '{test_id}' (known: {_known(tests)})"
                )
    if len(sources) != len(labs.sources):
        yield Finding("/labs/sources", "a laboratory is declared twice")
    for n, lab_range in enumerate(labs.ranges):
        if lab_range.test not in tests:
            yield Finding(f"/labs/ranges/{n}/test", f"unknown lab test '{lab_range.test}' (known: {_known(tests)})")
        if lab_range.source is not None and lab_range.source not in sources:
            yield Finding(
                f"/labs/ranges/{n}/source", f"unknown laboratory '{lab_range.source}' (known: {_known(sources)})"
            )
    visits = {visit.id for visit in definition.schedule.visits}
    for n, visit_id in enumerate(labs.expected.visits):
        if visit_id not in visits:
            yield Finding(f"/labs/expected/visits/{n}", f"unknown visit '{visit_id}' (known: {_known(visits)})")
