"""The rule language: small, safe, typed expressions for edit checks, eligibility, show_if and triggers.

    AGE >= 18 and SBP < 180
    is_blank(AE.AEOUT) or AE.AEENDTC >= AE.AESTDTC
    days_between(IC.ICDAT, VISIT_DATE) <= 28

Parsed with a lark grammar (never eval), type-checked against the study's items at load time,
compiled once into closures. Semantics, in one place:

- Three-valued (Kleene) logic. A missing value (None or an absent key) makes any comparison,
  arithmetic or strict function unknown (None); `and` is False if any side is False, else unknown
  if any side is; `or` likewise; `not` of unknown is unknown. A check raises a query only when its
  result is False, never when it is unknown.
- is_blank / is_present never return unknown; empty or whitespace-only text counts as blank (but is
  still a value for comparisons). coalesce returns the first present argument and is unknown only
  when every argument is missing. min / max are unknown if any argument is missing.
- Numbers are int or Decimal, never binary floats (a float input is read as the Decimal of its repr;
  NaN and infinities are missing). `/` and `**` give Decimals (28 digits). Division by zero, overflow
  and other undefined arithmetic are unknown, like missing values. round() rounds half away from zero.
- DATE and DATETIME may be compared: the DATETIME counts by its calendar date in its own UTC offset.
  days_between counts calendar days the same way. A comparison with the `null` literal is a type error
  (it would always be unknown): use is_blank / is_present.
- Comparisons do not chain (`1 < X < 3` is a syntax error); keywords are lower case and reserved.
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
