"""The syntax tree: frozen dataclasses, each with the 1-based line and column of its anchor token.

The anchor is the operator for operations (`and`, `<`, `+`, `not`, `in`), the first token otherwise,
so a type error such as "cannot compare DATE with NUMBER" points at the operator that fails.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from trialstack.protocol.rules.types import RuleType

Value: TypeAlias = int | Decimal | str | bool | None


@dataclass(frozen=True, slots=True)
class Const:
    """A literal: integer, decimal, string, true/false or null."""

    value: Value
    type: RuleType
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Name:
    """An item reference such as SBP, VS.SBP or SCR.VS.SBP (the full dotted text)."""

    name: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Expr
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    """`and` / `or` with Kleene (three-valued) semantics."""

    op: str
    left: Expr
    right: Expr
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Compare:
    """`==`, `!=`, `<`, `<=`, `>`, `>=`; unknown when either side is missing."""

    op: str
    left: Expr
    right: Expr
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Arith:
    """`+`, `-`, `*`, `/`, `**` on numbers; unknown when either side is missing."""

    op: str
    left: Expr
    right: Expr
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Member:
    """`x in (...)` / `x not in (...)` against a list of literals."""

    operand: Expr
    items: tuple[Const, ...]
    negated: bool
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Expr, ...]
    line: int
    column: int


Expr: TypeAlias = Const | Name | Not | Neg | BoolOp | Compare | Arith | Member | Call


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node, for walks that do not care about the node kind."""
    match expr:
        case Not(operand=o) | Neg(operand=o):
            return (o,)
        case BoolOp(left=a, right=b) | Compare(left=a, right=b) | Arith(left=a, right=b):
            return (a, b)
        case Member(operand=o, items=items):
            return (o, *items)
        case Call(args=args):
            return args
        case _:
            return ()


def names(expr: Expr) -> frozenset[str]:
    """Every item name an expression reads (iterative, so deep trees cannot overflow the stack)."""
    found: set[str] = set()
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Name):
            found.add(node.name)
        else:
            stack.extend(children(node))
    return frozenset(found)


def depth(expr: Expr) -> int:
    """Nesting depth of the tree (a leaf is 1), computed without recursion."""
    deepest = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(node))
    return deepest


def shape(expr: Expr) -> Hashable:
    """The structure of an expression without positions: equal for one sub-expression written twice."""
    match expr:
        case Const(value=value, type=type_):
            return ("const", type_, type(value).__name__, value)
        case Name(name=name):
            return ("name", name)
        case Not(operand=operand) | Neg(operand=operand):
            return (type(expr).__name__, shape(operand))
        case BoolOp(op=op, left=a, right=b) | Compare(op=op, left=a, right=b) | Arith(op=op, left=a, right=b):
            return (type(expr).__name__, op, shape(a), shape(b))
        case Member(operand=operand, items=items, negated=negated):
            return ("member", shape(operand), tuple(shape(item) for item in items), negated)
        case Call(function=function, args=args):
            return ("call", function, tuple(shape(arg) for arg in args))
    raise TypeError(f"not a rule expression node: {expr!r}")  # pragma: no cover
