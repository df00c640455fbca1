"""Errors of the rule language: every problem carries where it is, so a study builder can fix it."""

from __future__ import annotations

from dataclasses import dataclass

from trialstack.errors import TrialStackError


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem in one expression; line and column are 1-based and point at the offending token."""

    message: str
    line: int
    column: int
    rule_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}"
        return f"{self.rule_id}:{where}: {self.message}" if self.rule_id else f"{where}: {self.message}"


class RuleCompileError(TrialStackError):
    """An expression (or a rule set) that cannot be parsed or type-checked; `errors` lists every problem."""

    code = "rule-compile-error"

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid rule")


class RuleEvaluationError(TrialStackError):
    """A compiled rule met a value of the wrong runtime type (a caller bug: the env broke the symbol table)."""

    code = "rule-evaluation-error"

    def __init__(self, message: str, *, rule_id: str | None = None) -> None:
        super().__init__(message)
        self.rule_id = rule_id
