"""What a run exercised: edit checks, visits and eligibility criteria, against what the study declares.

A check or a criterion counts as covered only when some scenario saw it *fail*: a rule that was only ever seen
holding proves nothing about the rule (an expression that is always true would pass too). Passing results are
recorded as well, so the report shows which checks were also seen to pass again after a correction. A visit is
covered when some scenario recorded its date.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trialstack.capture.checks import CheckResult
from trialstack.protocol.definition import StudyDefinition

PASSED = "passed"
FAILED = "failed"
UNKNOWN = "unknown"


def _outcome(result: bool | None) -> str:
    return PASSED if result is True else FAILED if result is False else UNKNOWN


@dataclass
class Observations:
    """What one scenario (or a whole run, merged) saw: results per check and criterion, visits entered."""

    checks: dict[str, set[str]] = field(default_factory=dict)
    criteria: dict[str, set[str]] = field(default_factory=dict)
    visits: set[str] = field(default_factory=set)

    def check(self, result: CheckResult) -> None:
        self.checks.setdefault(result.check_id, set()).add(_outcome(result.result))

    def criterion(self, criterion_id: str, result: bool | None) -> None:
        self.criteria.setdefault(criterion_id, set()).add(_outcome(result))

    def visit(self, visit_id: str) -> None:
        self.visits.add(visit_id)

    def merge(self, other: Observations) -> None:
        for check_id, seen in other.checks.items():
            self.checks.setdefault(check_id, set()).update(seen)
        for criterion_id, seen in other.criteria.items():
            self.criteria.setdefault(criterion_id, set()).update(seen)
        self.visits |= other.visits


@dataclass(frozen=True)
class Line:
    """One declared rule or visit and what the run saw of it."""

    id: str
    label: str
    seen: frozenset[str]
    covered: bool


@dataclass(frozen=True)
class Section:
    name: str
    lines: tuple[Line, ...]

    @property
    def covered(self) -> int:
        return sum(1 for line in self.lines if line.covered)

    @property
    def total(self) -> int:
        return len(self.lines)

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.total if self.total else 100.0

    @property
    def untested(self) -> list[Line]:
        return [line for line in self.lines if not line.covered]


@dataclass(frozen=True)
class Coverage:
    edit_checks: Section
    visits: Section
    criteria: Section

    @property
    def sections(self) -> tuple[Section, Section, Section]:
        return self.edit_checks, self.visits, self.criteria

    def below(self, percent: float) -> list[Section]:
        return [section for section in self.sections if section.percent < percent]


def coverage(definition: StudyDefinition, observed: Observations) -> Coverage:
    """Every edit check (explicit and range-generated), visit and criterion, with what was observed."""
    checks = tuple(
        Line(c.id, c.message, frozenset(observed.checks.get(c.id, ())), FAILED in observed.checks.get(c.id, ()))
        for c in definition.all_edit_checks()
    )
    visits = tuple(
        Line(v.id, v.name, frozenset({"entered"} if v.id in observed.visits else ()), v.id in observed.visits)
        for v in definition.schedule.visits
    )
    declared = definition.eligibility.criteria if definition.eligibility is not None else ()
    criteria = tuple(
        Line(c.id, c.text, frozenset(observed.criteria.get(c.id, ())), FAILED in observed.criteria.get(c.id, ()))
        for c in declared
    )
    return Coverage(
        Section("edit checks", checks), Section("visits", visits), Section("eligibility criteria", criteria)
    )
