"""Compile a type-checked tree into nested closures, once; evaluating a rule then walks no tree.

What compiling adds over the reference interpreter, and what the property test checks it against:
constant folding (any sub-expression without names, e.g. `date("2026-01-05")`, is computed once);
flattening of `a and b and c` chains with absorbing constants; comparisons of one sub-expression
with constants joined by and/or (`X >= 60 and X <= 250`, `age(...) >= 18 and age(...) <= 75`)
evaluating that sub-expression once; fast paths that read items straight from the env; and
DATE/DATETIME handling decided from the static types instead of at run time.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from trialstack.protocol.rules import apply as ap
from trialstack.protocol.rules import closures as c
from trialstack.protocol.rules import compare as cmp
from trialstack.protocol.rules.ast import (
    Arith,
    BoolOp,
    Call,
    Compare,
    Const,
    Expr,
    Member,
    Name,
    Neg,
    Not,
    names,
    shape,
)
from trialstack.protocol.rules.checker import check
from trialstack.protocol.rules.code import Blank, Code, Test, const, fold
from trialstack.protocol.rules.errors import RuleCompileError, RuleError, RuleEvaluationError
from trialstack.protocol.rules.functions import FUNCTIONS
from trialstack.protocol.rules.fusion import combined, grouped
from trialstack.protocol.rules.parser import parse
from trialstack.protocol.rules.types import RuleType
from trialstack.protocol.rules.values import CONTEXT, as_date, power

COMPARE: dict[str, c.Op] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# Same semantics as values.ARITH; the closures catch ArithmeticError themselves.
ARITH: dict[str, c.Op] = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": CONTEXT.divide, "**": power}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_RUNTIME_ERRORS = (TypeError, AttributeError, ArithmeticError, ValueError)
_B, _N, _DATE = RuleType.BOOLEAN, RuleType.NUMBER, RuleType.DATE


def _negative(value: Any) -> object:
    return -value


def _to_date(code: Code) -> Code:
    """Reduce a DATETIME operand to its date, so it compares with a DATE."""
    if code.const:
        return const(None if code.value is None else as_date(code.value), _DATE)  # type: ignore[arg-type]
    if code.key is not None:
        return Code(c.read_date(code.key), _DATE)
    return Code(ap.strict1(as_date, code.fn), _DATE)  # type: ignore[arg-type]


def _decimal(code: Code) -> Code:
    """An int constant as the equal Decimal (same results, less work per call)."""
    if code.const and isinstance(code.value, int) and not isinstance(code.value, bool):
        return const(Decimal(code.value), code.type)
    return code


def _is_null(code: Code) -> bool:
    return code.const and code.value is None


class _Compiler:
    def __init__(self, symbols: Mapping[str, RuleType]) -> None:
        self.symbols = symbols

    def build(self, node: Expr) -> Code:
        match node:
            case Const(value=value, type=type_):
                return const(value, type_)
            case Name(name=key):
                return Code(c.read(key), self.symbols[key], key=key)
            case Not(operand=operand):
                inner = self.build(operand)
                return fold(Code(c.negate(inner.fn), _B), inner)
            case Neg(operand=operand):
                inner = self.build(operand)
                return fold(Code(ap.strict1(_negative, inner.fn), _N), inner)
            case BoolOp():
                return self.bool_op(node)
            case Arith():
                return self.arith(node)
            case Compare():
                return self.compare(node)
            case Member(operand=operand, items=items, negated=negated):
                inner = self.build(operand)
                choices = frozenset(item.value for item in items)
                if inner.key is not None:
                    return Code(c.member_name(inner.key, choices, negated), _B)
                return fold(Code(c.member(inner.fn, choices, negated), _B), inner)
            case Call():
                return self.call(node)
        raise TypeError(f"not a rule expression node: {node!r}")  # pragma: no cover

    def bool_op(self, node: BoolOp) -> Code:
        op = node.op
        operands: list[Expr] = []
        stack: list[Expr] = [node]
        while stack:  # flatten `a and b and c` (any nesting of one operator) into one n-ary node
            item = stack.pop()
            if isinstance(item, BoolOp) and item.op == op:
                stack.extend((item.right, item.left))
            else:
                operands.append(item)
        absorbing, neutral = (False, True) if op == "and" else (True, False)
        codes: list[Code] = []
        for code in map(self.build, operands):
            if code.const and code.value is absorbing:
                return const(absorbing, _B)
            if not (code.const and code.value is neutral):
                codes.append(code)
        if not codes:
            return const(neutral, _B)
        codes = grouped(codes, op == "and")
        return codes[0] if len(codes) == 1 else fold(Code(combined(codes, op == "and"), _B), *codes)

    def arith(self, node: Arith) -> Code:
        a, b = self.build(node.left), self.build(node.right)
        op = ARITH[node.op]
        if _is_null(a) or _is_null(b):
            return const(None, _N)
        if node.op in ("/", "**"):  # the decimal context would convert an int operand on every call
            a, b = _decimal(a), _decimal(b)
        if a.const and b.const:
            return fold(Code(ap.arith(op, a.fn, b.fn), _N), a, b)
        if b.const:
            fn = ap.arith_name_right(op, a.key, b.value) if a.key else ap.arith_right(op, a.fn, b.value)
        elif a.const:
            fn = ap.arith_name_left(op, a.value, b.key) if b.key else ap.arith_left(op, a.value, b.fn)
        elif a.key is not None:
            fn = ap.arith_name_first(op, a.key, b.fn)
        elif b.key is not None:
            fn = ap.arith_name_second(op, a.fn, b.key)
        else:
            fn = ap.arith(op, a.fn, b.fn)
        return Code(fn, _N)

    def compare(self, node: Compare) -> Code:
        a, b = self.build(node.left), self.build(node.right)
        if {a.type, b.type} == {_DATE, RuleType.DATETIME}:
            a = _to_date(a) if a.type is RuleType.DATETIME else a
            b = _to_date(b) if b.type is RuleType.DATETIME else b
        if _is_null(a) or _is_null(b):
            return const(None, _B)
        op, subject = node.op, node.left
        if (a.const and not b.const) or (a.key is None and b.key is not None and not a.const):
            a, b, op, subject = b, a, _FLIPPED[op], node.right  # constant or plain item to the right
        fn = COMPARE[op]
        if b.const and not a.const:
            test = Test((shape(subject), a.type), a, fn, b.value)
            if a.key is not None:
                return Code(cmp.compare_name_const(fn, a.key, b.value), _B, test=test)
            return Code(cmp.compare_value_const(fn, a.fn, b.value), _B, test=test)
        if a.key is not None and b.key is not None:
            return Code(cmp.compare_names(fn, a.key, b.key), _B)
        if a.key is not None:
            return Code(cmp.compare_name_value(fn, a.key, b.fn), _B)
        return fold(Code(cmp.strict2(fn, a.fn, b.fn), _B), a, b)

    def call(self, node: Call) -> Code:
        spec = FUNCTIONS[node.function]
        args = tuple(self.build(arg) for arg in node.args)
        result = spec.result or next((a.type for a in args if a.type is not RuleType.NULL), RuleType.NULL)
        fns = tuple(a.fn for a in args)
        keys = [a.key for a in args if a.key is not None and a.type is not _N]
        if spec.name in ("is_blank", "is_present") and len(keys) == 1:
            blank = Blank(keys[0], args[0].type is RuleType.TEXT, spec.name == "is_present")
            return Code(c.blank_name(blank.key, blank.text, blank.present), result, blank=blank)
        if not spec.strict:
            return fold(Code(ap.lenient(spec.impl, fns), result), *args)
        impl = spec.impl
        if spec.on_dates is not None and all(a.type is _DATE for a in args):
            impl = spec.on_dates
        if len(keys) == len(args) == 1:
            return Code(ap.call_name(impl, keys[0]), result)
        if len(keys) == len(args) == 2:
            return Code(ap.call_names(impl, keys[0], keys[1]), result)
        if len(fns) == 1:
            code = Code(ap.strict1(impl, fns[0]), result)
        elif len(fns) == 2:
            code = Code(cmp.strict2(impl, fns[0], fns[1]), result)
        else:
            code = Code(ap.strict_n(impl, fns), result)
        return fold(code, *args)


class CompiledRule:
    """A rule compiled once: call it with an env (item name -> value) to get its value or None (unknown).

    `fn` is the bare closure (no error wrapping) for callers that evaluate many rules in a loop.
    """

    __slots__ = ("expr", "fn", "reads", "result_type", "source")

    def __init__(self, source: str, expr: Expr, result_type: RuleType, fn: c.Fn) -> None:
        self.source = source
        self.expr = expr
        self.reads: frozenset[str] = names(expr)
        self.result_type = result_type
        self.fn = fn

    def __call__(self, env: Mapping[str, object]) -> object | None:
        try:
            return self.fn(env)
        except _RUNTIME_ERRORS as exc:
            raise RuleEvaluationError(f"rule {self.source!r} cannot evaluate these values: {exc}") from exc

    def __repr__(self) -> str:
        return f"CompiledRule({self.source!r}, {self.result_type})"


def compile_rule(
    source: str, symbols: Mapping[str, RuleType], expect: RuleType | None = RuleType.BOOLEAN
) -> CompiledRule:
    """Parse, type-check and compile one rule; `expect` is its required result type (None: any).

    Raises RuleCompileError listing every error (a syntax error stops at the first one).
    """
    expr = parse(source)
    result, errors = check(expr, symbols)
    if result is not None and expect is not None and result not in (expect, RuleType.NULL):
        errors.append(RuleError(f"rule got {result}, expected {expect}", expr.line, expr.column))
    if errors or result is None:
        raise RuleCompileError(errors)
    return CompiledRule(source, expr, result, _Compiler(symbols).build(expr).fn)
