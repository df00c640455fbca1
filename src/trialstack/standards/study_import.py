"""The result every importer returns, and turning model findings into problems located in the source."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.problems import Finding, StudyDefinitionError, StudyProblem
from trialstack.standards.report import MappingReport

StudyFormatName = Literal["yaml", "odm-1.3.2", "odm-2.0", "usdm-4"]


@dataclass(frozen=True)
class ImportResult:
    """A definition read from a standard, with the report of what was mapped, defaulted and left out."""

    definition: StudyDefinition
    format: StudyFormatName
    report: MappingReport

    @property
    def warnings(self) -> list[str]:
        return self.report.warnings()


@dataclass(frozen=True)
class Origin:
    """Where a part of the definition came from in the source: line, column and a readable location."""

    line: int
    column: int
    location: str


def locate(
    file: str, findings: Iterable[Finding], origins: Mapping[str, Origin], fallback: Origin
) -> list[StudyProblem]:
    """Place findings (JSON pointers into the definition) at the source element each part came from."""
    problems = []
    for finding in findings:
        pointer = finding.pointer
        while pointer and pointer not in origins:
            pointer = pointer.rsplit("/", 1)[0]
        origin = origins.get(pointer, fallback)
        message = f"{finding.message} (in the imported definition at {finding.pointer or '/'})"
        problems.append(StudyProblem(file, origin.line, origin.column, origin.location, message))
    return sorted(set(problems))


def raise_if(file: str, problems: list[StudyProblem]) -> None:
    if problems:
        raise StudyDefinitionError(file, problems)
