"""The step library: patterns in the study team's words, matched against the steps of a scenario.

A pattern is plain text with typed placeholders, `subject {string} is screened at site {string} on {date}`.
Binding happens before anything runs: each step is matched (Given/When/Then keywords are not part of the match,
as in Cucumber) and its arguments are resolved against the study, so an unknown step, an ambiguous one, or a
scenario naming a visit the study does not have is reported with file and line before the first command.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from trialstack.bdd.errors import Location, Problem, ReferenceProblem, SpecificationError
from trialstack.bdd.features import DataTable, Scenario, Step
from trialstack.bdd.names import Names

StepFunction = Callable[..., None]


@dataclass(frozen=True)
class ParameterType:
    name: str
    regex: str
    convert: Callable[[Names, str], object]
    meaning: str


def _date(_names: Names, text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ReferenceProblem(f"{text} is not a real date (YYYY-MM-DD)") from None


def _item(names: Names, text: str) -> str:
    names.any_item(text)
    return text


def _query(names: Names, text: str) -> str:
    return text if text.startswith("Q-") else names.check(text)


def _criteria(names: Names, text: str) -> tuple[str, ...]:
    return tuple(names.criterion(part) for part in re.split(r"\s*(?:,|\band\b)\s*", text.strip()) if part)


PARAMETER_TYPES: dict[str, ParameterType] = {
    t.name: t
    for t in (
        ParameterType("string", r'"([^"]*)"', lambda _n, s: s, 'text in double quotes: "0101-001"'),
        ParameterType("date", r"(\d{4}-\d{2}-\d{2})", _date, "a calendar date, ISO 8601: 2026-01-05"),
        ParameterType(
            "value", r'("[^"]*"|[^\s"]+)', lambda _n, s: s.strip('"'), 'a value as typed: 190, 80.5, "Not related"'
        ),
        ParameterType("visit", r'"([^"]+)"', lambda n, s: n.visit(s), 'a visit by name or id: "Week 2", "WEEK2"'),
        ParameterType(
            "form",
            r'((?:the |[A-Z"]).+?)',
            lambda n, s: n.form_instance(s),
            'a form instance: the "Week 2" vital signs, the "Screening" "Vital Signs" form, the adverse event record 1',
        ),
        ParameterType("item", r"(.+?)", _item, "an item by id, label, short label or initials: SYSBP, SBP, Weight"),
        ParameterType(
            "actor",
            r"(coordinator|investigator|monitor|data manager|medical monitor)",
            lambda _n, s: s,
            "who acts: coordinator, investigator, monitor, data manager, medical monitor",
        ),
        ParameterType("check", r'"([^"]+)"', lambda n, s: n.check(s), 'an edit check id: "VS-SBP-ELIG"'),
        ParameterType("consent", r'"([^"]+)"', lambda n, s: n.consent(s), 'a consent document by id or title: "ICF"'),
        ParameterType(
            "instrument",
            r'"([^"]+)"',
            lambda n, s: n.instrument(s),
            'a questionnaire by id or name: "PHQ-9", "PHQ9", "Daily symptom diary"',
        ),
        ParameterType("criteria", r'"([^"]+)"', _criteria, 'eligibility criteria ids: "IN02" or "IN02, EX01"'),
        ParameterType(
            "query", r'"([^"]+)"', _query, 'a query by its edit check or its id: "VS-SBP-ELIG", "Q-0101-001-002"'
        ),
        ParameterType(
            "query_status", r"(open|answered|closed|cancelled)", lambda _n, s: s, "open, answered, closed, cancelled"
        ),
        ParameterType(
            "subject_status",
            r"(in screening|enrolled|screen failed|withdrawn|completed)",
            lambda _n, s: s,
            "in screening, enrolled, screen failed, withdrawn, completed",
        ),
        ParameterType("words", r"([A-Za-z][A-Za-z ]*[A-Za-z])", lambda _n, s: s, "words: save, visit date, SDV"),
    )
}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def compile_pattern(pattern: str) -> tuple[re.Pattern[str], tuple[ParameterType, ...]]:
    parts: list[str] = []
    types: list[ParameterType] = []
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        kind = PARAMETER_TYPES.get(match[1])
        if kind is None:
            raise ValueError(f"unknown placeholder {{{match[1]}}} in step pattern {pattern!r}")
        parts.append(kind.regex)
        types.append(kind)
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("".join(parts)), tuple(types)


@dataclass(frozen=True)
class StepDefinition:
    pattern: str
    function: StepFunction
    example: str
    topic: str
    table: tuple[str, ...] | None = None
    """The columns a data table must have; None: the step takes no table."""
    optional_columns: tuple[str, ...] = ()
    inspects_refusal: bool = False
    regex: re.Pattern[str] = field(init=False, compare=False)
    types: tuple[ParameterType, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        regex, types = compile_pattern(self.pattern)
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "types", types)

    @property
    def meaning(self) -> str:
        return " ".join((inspect.getdoc(self.function) or "").split("\n\n")[0].split())


@dataclass(frozen=True)
class BoundStep:
    step: Step
    definition: StepDefinition
    args: tuple[Any, ...]


@dataclass(frozen=True)
class BoundScenario:
    scenario: Scenario
    steps: tuple[BoundStep, ...]


def _clean(text: str) -> str:
    return " ".join(text.split())


def strip_keyword(example: str) -> str:
    """The step text of an example: no keyword, no data table."""
    return re.sub(r"^(Given|When|Then|And|But)\s+", "", example.split("\n")[0])


class StepLibrary:
    def __init__(self) -> None:
        self.definitions: list[StepDefinition] = []

    def step(
        self,
        pattern: str,
        *,
        example: str,
        topic: str,
        table: tuple[str, ...] | None = None,
        optional_columns: tuple[str, ...] = (),
        inspects_refusal: bool = False,
    ) -> Callable[[StepFunction], StepFunction]:
        """Register a step function under a pattern; its docstring is the meaning shown in the docs."""

        def register(function: StepFunction) -> StepFunction:
            definition = StepDefinition(pattern, function, example, topic, table, optional_columns, inspects_refusal)
            self.definitions.append(definition)
            return function

        return register

    def matches(self, text: str) -> list[tuple[StepDefinition, re.Match[str]]]:
        text = _clean(text)
        found = [(d, d.regex.fullmatch(text)) for d in self.definitions]
        return [(d, m) for d, m in found if m is not None]

    def suggestions(self, text: str, count: int = 3) -> list[str]:
        """The known steps closest to `text` (difflib), shown by their patterns."""

        def score(definition: StepDefinition) -> float:
            return max(
                difflib.SequenceMatcher(None, text, definition.pattern).ratio(),
                difflib.SequenceMatcher(None, text, strip_keyword(definition.example)).ratio(),
            )

        return [d.pattern for d in sorted(self.definitions, key=score, reverse=True)[:count]]

    def bind_step(self, step: Step, names: Names) -> BoundStep:
        """Match one step and resolve its arguments; ReferenceProblem or SpecificationError say why not."""
        found = self.matches(step.text)
        if not found:
            hints = "".join(f"\n      {s}" for s in self.suggestions(step.text))
            raise SpecificationError([Problem(step.location, f'unknown step "{step.text}"; closest known:{hints}')])
        if len(found) > 1:
            patterns = "; ".join(d.pattern for d, _ in found)
            raise SpecificationError([Problem(step.location, f'ambiguous step "{step.text}" matches: {patterns}')])
        definition, match = found[0]
        args = tuple(kind.convert(names, raw) for kind, raw in zip(definition.types, match.groups(), strict=True))
        _check_table(definition, step.table, names)
        return BoundStep(step, definition, args)

    def bind(self, scenarios: list[Scenario], names: Names) -> list[BoundScenario]:
        """Bind every step of every scenario; all problems at once, each with its file and line."""
        problems: list[Problem] = []
        bound: list[BoundScenario] = []
        for scenario in scenarios:
            steps: list[BoundStep] = []
            for step in scenario.steps:
                try:
                    steps.append(self.bind_step(step, names))
                except SpecificationError as error:
                    problems += error.problems
                except ReferenceProblem as error:
                    problems.append(Problem(step.location, error.message))
            bound.append(BoundScenario(scenario, tuple(steps)))
        if problems:
            raise SpecificationError(_unique(problems))
        return bound


def _unique(problems: list[Problem]) -> list[Problem]:
    """Background steps repeat in every scenario: report each problem once, where it is written."""
    seen: set[tuple[str, int, str]] = set()
    unique: list[Problem] = []
    for problem in problems:
        location = problem.location or Location("", 0)
        key = (location.file, location.line, problem.message)
        if key not in seen:
            seen.add(key)
            unique.append(problem)
    return unique


def _check_table(definition: StepDefinition, table: DataTable | None, names: Names) -> None:
    if definition.table is None:
        if table is not None:
            raise ReferenceProblem(f'the step "{definition.pattern}" takes no data table')
        return
    if table is None:
        columns = " | ".join(definition.table)
        raise ReferenceProblem(f'the step "{definition.pattern}" needs a data table: | {columns} |')
    header = tuple(h.strip().lower() for h in table.header)
    missing = [c for c in definition.table if c not in header]
    extra = [c for c in header if c not in definition.table + definition.optional_columns]
    if missing or extra:
        allowed = ", ".join(definition.table + definition.optional_columns)
        raise ReferenceProblem(f"data table columns {', '.join(header)}: expected {allowed}")
    if "item" in header:
        for row in table.records():
            names.any_item(dict(zip(header, row.values(), strict=True))["item"])


LIBRARY = StepLibrary()
"""The step library of TrialStack; the `steps_*` modules register on it when imported (see `library`)."""
