"""Errors of a specification: what the study team wrote is wrong, before or while it runs.

`SpecificationError` means the features cannot run as written (syntax, unknown step, unknown visit, form or
item); it names file and line, never a Python traceback. `ExpectationFailed` is a step whose expectation does
not hold: the scenario fails with what was expected and what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialstack.errors import TrialStackError


@dataclass(frozen=True)
class Location:
    """A place in a feature file; `example_line` is the Examples row an outline scenario was built from."""

    file: str
    line: int
    example_line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where} (example at line {self.example_line})" if self.example_line is not None else where


@dataclass(frozen=True)
class Problem:
    location: Location | None
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location is not None else self.message


class SpecificationError(TrialStackError):
    """The features cannot run as written; `problems` lists every one found, each with file and line."""

    code = "specification-error"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the specification:\n{lines}")


class ReferenceProblem(TrialStackError):
    """A step names a visit, form, item, check or criterion the study does not have."""

    code = "unknown-reference"


class ExpectationFailed(Exception):
    """A Then step whose expectation does not hold (or a Given whose setup the system refused)."""

    def __init__(self, message: str, *, expected: str = "", actual: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.actual = actual
