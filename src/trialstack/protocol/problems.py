"""What is wrong with a study definition, and where: the validator's vocabulary.

Checks produce `Finding`s addressed by JSON pointer (they know the model, not the file); a loader
that knows where each pointer came from turns them into `StudyProblem`s with a line and column.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from trialstack.errors import TrialStackError


@dataclass(frozen=True, order=True)
class StudyProblem:
    """One problem, located: 1-based `line` and `column` in `file`, and the JSON `pointer` of the value."""

    file: str
    line: int
    column: int
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.pointer or '/'}: {self.message}"


@dataclass(frozen=True)
class Finding:
    """A problem found in the model, addressed by JSON pointer.

    `expression_at` is a (line, column) inside the expression text at `pointer`, both 1-based, when the
    problem is a rule-language error; `at_key` points at the key itself (an unknown key); `position` is
    a 1-based (line, column) the parser already knows (malformed YAML, a repeated key).
    """

    pointer: str
    message: str
    expression_at: tuple[int, int] | None = None
    at_key: bool = False
    position: tuple[int, int] | None = None


class SourceLocator(Protocol):
    """Where a pointer's value sits in the source file; loaders implement it."""

    file: str

    def locate(
        self, pointer: str, *, at_key: bool = False, expression_at: tuple[int, int] | None = None
    ) -> tuple[int, int]:
        """Return the 1-based (line, column) of the value at `pointer` (or its nearest existing parent)."""
        ...


class NoSource:
    """A locator for definitions built in code: every problem is at 1:1, the pointer says where."""

    def __init__(self, file: str = "<definition>") -> None:
        self.file = file

    def locate(
        self, pointer: str, *, at_key: bool = False, expression_at: tuple[int, int] | None = None
    ) -> tuple[int, int]:
        return (1, 1)


def locate_findings(findings: Iterable[Finding], locator: SourceLocator) -> list[StudyProblem]:
    """Place every finding in the source, sorted by position, without duplicates."""
    problems = {
        StudyProblem(
            locator.file,
            *(
                finding.position
                or locator.locate(finding.pointer, at_key=finding.at_key, expression_at=finding.expression_at)
            ),
            finding.pointer,
            finding.message,
        )
        for finding in findings
    }
    return sorted(problems)


def escape_pointer_token(token: str | int) -> str:
    """RFC 6901: `~` becomes `~0` and `/` becomes `~1`."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_of(*tokens: str | int) -> str:
    return "".join(f"/{escape_pointer_token(token)}" for token in tokens)


class StudyDefinitionError(TrialStackError):
    """A study definition that cannot be used; `problems` lists every problem found, all at once."""

    code = "study-definition-invalid"

    def __init__(self, file: str, problems: Iterable[StudyProblem]) -> None:
        self.file = file
        self.problems = tuple(problems)
        shown = "\n".join(f"  {problem}" for problem in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        count = len(self.problems)
        super().__init__(f"{file}: {count} problem{'s' if count != 1 else ''} in the study definition\n{shown}{more}")
