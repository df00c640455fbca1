"""Compile a type-checked tree into nested closures, once; evaluating a rule then walks no tree.

What compiling adds over the reference interpreter, and what the property test checks it against:
constant folding (any sub-expression without names, e.g. `date("2026-01-05")`, is computed once),
flattening of `a and b and c` chains with absorbing constants, fast paths that read an item
straight from the env, and DATE/DATETIME coercion decided from the static types instead of at run
time.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trialstack.protocol.rules import closures as c
from trialstack.protocol.rules.ast import Arith, BoolOp, Call, Compare, Const, Expr, Member, Name, Neg, Not, names
from trialstack.protocol.rules.checker import check
from trialstack.protocol.rules.errors import RuleCompileError, RuleError, RuleEvaluationError
from trialstack.protocol.rules.functions import FUNCTIONS
from trialstack.protocol.rules.parser import parse
from trialstack.protocol.rules.types import RuleType
from trialstack.protocol.rules.values import ARITH, as_date

COMPARE: dict[str, c.Op] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_EMPTY: Mapping[str, object] = {}
_RUNTIME_ERRORS = (TypeError, AttributeError, ArithmeticError, ValueError)


@dataclass(frozen=True, slots=True)
class _Code:
    """A compiled sub-expression: its closure and static type, plus what fast paths need to know."""

    fn: c.Fn
    type: RuleType
    const: bool = False
    value: object = None
    key: str | None = None  # the item name, when the node is a plain name read
    test: tuple[str, c.Op, object] | None = None  # (item, op, constant) of `item op constant`


def _negative(value: Any) -> object:
    return -value


def _const(value: object, type_: RuleType) -> _Code:
    return _Code(c.constant(value), type_, const=True, value=value)


def _folded(code: _Code) -> _Code:
    return _const(code.fn(_EMPTY), code.type)


def _to_date(code: _Code) -> _Code:
    """Reduce a DATETIME operand to its date, so it compares with a DATE."""
    if code.const:
        return _const(None if code.value is None else as_date(code.value), RuleType.DATE)  # type: ignore[arg-type]
    return _Code(c.strict1(as_date, code.fn), RuleType.DATE)  # type: ignore[arg-type]


class _Compiler:
    def __init__(self, symbols: Mapping[str, RuleType]) -> None:
        self.symbols = symbols

    def build(self, node: Expr) -> _Code:
        match node:
            case Const(value=value, type=type_):
                return _const(value, type_)
            case Name(name=key):
                return _Code(c.read(key), self.symbols[key], key=key)
            case Not(operand=operand):
                inner = self.build(operand)
                return self.fold(_Code(c.negate(inner.fn), RuleType.BOOLEAN), inner)
            case Neg(operand=operand):
                inner = self.build(operand)
                return self.fold(_Code(c.strict1(_negative, inner.fn), RuleType.NUMBER), inner)
            case BoolOp():
                return self.bool_op(node)
            case Arith(op=op, left=left, right=right):
                a, b = self.build(left), self.build(right)
                return self.fold(_Code(c.strict2(ARITH[op], a.fn, b.fn), RuleType.NUMBER), a, b)
            case Compare():
                return self.compare(node)
            case Member(operand=operand, items=items, negated=negated):
                inner = self.build(operand)
                choices = frozenset(item.value for item in items)
                if inner.key is not None:
                    return _Code(c.member_name(inner.key, choices, negated), RuleType.BOOLEAN)
                return self.fold(_Code(c.member(inner.fn, choices, negated), RuleType.BOOLEAN), inner)
            case Call():
                return self.call(node)
        raise TypeError(f"not a rule expression node: {node!r}")  # pragma: no cover

    @staticmethod
    def fold(code: _Code, *parts: _Code) -> _Code:
        return _folded(code) if all(p.const for p in parts) else code

    def bool_op(self, node: BoolOp) -> _Code:
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
        codes: list[_Code] = []
        for code in map(self.build, operands):
            if code.const and code.value is absorbing:
                return _const(absorbing, RuleType.BOOLEAN)
            if not (code.const and code.value is neutral):
                codes.append(code)
        if not codes:
            return _const(neutral, RuleType.BOOLEAN)
        if len(codes) == 1:
            return codes[0]
        tests = [code.test for code in codes if code.test is not None]
        if len(tests) == len(codes) and len({key for key, _, _ in tests}) == 1:
            pairs = tuple((op_fn, value) for _, op_fn, value in tests)
            return _Code(c.tests_on_name(tests[0][0], pairs, op == "and"), RuleType.BOOLEAN)
        fns = tuple(code.fn for code in codes)
        return self.fold(_Code(c.all_of(fns) if op == "and" else c.any_of(fns), RuleType.BOOLEAN), *codes)

    def compare(self, node: Compare) -> _Code:
        a, b = self.build(node.left), self.build(node.right)
        if {a.type, b.type} == {RuleType.DATE, RuleType.DATETIME}:
            a, b = (
                (_to_date(a) if a.type is RuleType.DATETIME else a),
                (_to_date(b) if b.type is RuleType.DATETIME else b),
            )
        if (a.const and a.value is None) or (b.const and b.value is None):
            return _const(None, RuleType.BOOLEAN)
        op = node.op
        if a.const and b.key is not None:
            a, b, op = b, a, _FLIPPED[op]
        if a.key is not None and b.const:
            test = (a.key, COMPARE[op], b.value)
            return _Code(c.compare_name_const(COMPARE[op], a.key, b.value), RuleType.BOOLEAN, test=test)
        if a.key is not None and b.key is not None:
            return _Code(c.compare_names(COMPARE[op], a.key, b.key), RuleType.BOOLEAN)
        return self.fold(_Code(c.strict2(COMPARE[op], a.fn, b.fn), RuleType.BOOLEAN), a, b)

    def call(self, node: Call) -> _Code:
        spec = FUNCTIONS[node.function]
        args = tuple(self.build(arg) for arg in node.args)
        result = spec.result or next((a.type for a in args if a.type is not RuleType.NULL), RuleType.NULL)
        fns = tuple(a.fn for a in args)
        if not spec.strict:
            if len(args) == 1 and args[0].key is not None and args[0].type is not RuleType.NUMBER:
                return _Code(c.lenient_name(spec.impl, args[0].key), result)
            return self.fold(_Code(c.lenient(spec.impl, fns), result), *args)
        if len(fns) == 1:
            code = _Code(c.strict1(spec.impl, fns[0]), result)
        elif len(fns) == 2:
            code = _Code(c.strict2(spec.impl, fns[0], fns[1]), result)
        else:
            code = _Code(c.strict_n(spec.impl, fns), result)
        return self.fold(code, *args)


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
