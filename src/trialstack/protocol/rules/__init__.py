"""The rule language: small, safe, typed expressions for edit checks, eligibility, show_if and triggers.

    AGE >= 18 and SBP < 180
    is_blank(AE.AEOUT) or AE.AEENDTC >= AE.AESTDTC
    days_between(IC.ICDAT, VISIT_DATE) <= 28

Parsed with a lark grammar (never eval), type-checked against the study's items at load time,
compiled once into closures, evaluated with three-valued logic: a value that is missing makes a
comparison unknown (None), and a check raises a query only when its result is False.
"""

from __future__ import annotations

from trialstack.protocol.rules.ast import Expr, names
from trialstack.protocol.rules.checker import typecheck
from trialstack.protocol.rules.compiler import CompiledRule, compile_rule
from trialstack.protocol.rules.errors import RuleCompileError, RuleError, RuleEvaluationError
from trialstack.protocol.rules.parser import parse
from trialstack.protocol.rules.ruleset import RuleSet
from trialstack.protocol.rules.types import RuleType


def names_in(source: str) -> frozenset[str]:
    """The item names an expression reads (for dependency and cycle checks of derived items).

    Raises RuleCompileError if the source does not parse; needs no symbol table.
    """
    return names(parse(source))


__all__ = [
    "CompiledRule",
    "Expr",
    "RuleCompileError",
    "RuleError",
    "RuleEvaluationError",
    "RuleSet",
    "RuleType",
    "compile_rule",
    "names_in",
    "parse",
    "typecheck",
]
