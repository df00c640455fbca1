"""A plain tree-walking interpreter: the executable specification the compiler is tested against.

Deliberately naive: no folding, no fast paths, no short-circuit, every type decision made at run time
from the values. It shares only the value semantics (values.py) and the function implementations.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from trialstack.protocol.rules.ast import Arith, BoolOp, Call, Compare, Const, Expr, Member, Name, Neg, Not
from trialstack.protocol.rules.functions import FUNCTIONS
from trialstack.protocol.rules.values import ARITH, number_in


def _kleene_and(a: object, b: object) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _kleene_or(a: object, b: object) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _compare(op: str, a: object, b: object) -> bool | None:
    if a is None or b is None:
        return None
    if isinstance(a, datetime) != isinstance(b, datetime) and isinstance(a, date) and isinstance(b, date):
        a = a.date() if isinstance(a, datetime) else a
        b = b.date() if isinstance(b, datetime) else b
    x, y = a, b  # the operands are of one comparable type here (the checker made sure)
    if op == "==":
        return bool(x == y)
    if op == "!=":
        return bool(x != y)
    if op == "<":
        return bool(x < y)  # type: ignore[operator]
    if op == "<=":
        return bool(x <= y)  # type: ignore[operator]
    if op == ">":
        return bool(x > y)  # type: ignore[operator]
    return bool(x >= y)  # type: ignore[operator]


def evaluate(expr: Expr, env: Mapping[str, object]) -> object | None:
    """Value of a type-checked expression in `env`; None means unknown."""
    match expr:
        case Const(value=value):
            return value
        case Name(name=name):
            return number_in(env.get(name))
        case Not(operand=operand):
            v = evaluate(operand, env)
            return None if v is None else not v
        case Neg(operand=operand):
            v = evaluate(operand, env)
            return None if v is None else -v  # type: ignore[operator]
        case BoolOp(op=op, left=left, right=right):
            a, b = evaluate(left, env), evaluate(right, env)
            return _kleene_and(a, b) if op == "and" else _kleene_or(a, b)
        case Compare(op=op, left=left, right=right):
            return _compare(op, evaluate(left, env), evaluate(right, env))
        case Arith(op=op, left=left, right=right):
            a, b = evaluate(left, env), evaluate(right, env)
            return None if a is None or b is None else ARITH[op](a, b)
        case Member(operand=operand, items=items, negated=negated):
            v = evaluate(operand, env)
            if v is None:
                return None
            found = any(v == item.value for item in items)
            return not found if negated else found
        case Call(function=function, args=args):
            spec = FUNCTIONS[function]
            values = [evaluate(arg, env) for arg in args]
            if spec.strict and any(v is None for v in values):
                return None
            return spec.impl(*values)
    raise TypeError(f"not a rule expression node: {expr!r}")  # pragma: no cover
