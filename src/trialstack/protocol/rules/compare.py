"""Closure factories for comparisons (see closures.py for reads and logic, apply.py for arithmetic).

A comparison is unknown when either side is missing. The name-shaped factories read the env directly
(one Python call less per comparison, the dominant cost), converting a float item to Decimal.
"""

from __future__ import annotations

import operator

from trialstack.protocol.rules.closures import Env, Fn, Op, read
from trialstack.protocol.rules.values import number_in


def compare_name_const(op: Op, key: str, c: object) -> Fn:
    def compare(env: Env) -> object:
        v = env.get(key)
        if v is None:
            return None
        if v.__class__ is float:
            v = number_in(v)
            if v is None:
                return None
        return op(v, c)

    return compare


def tests_on_name(key: str, tests: tuple[tuple[Op, object], ...], conjunction: bool) -> Fn:
    """Several comparisons of one item with constants joined by `and` (a range check) or by `or`.

    One read instead of one closure per comparison; with the item present every comparison is a
    bool, so Python's own `and`/`or` is the Kleene one, and with it missing all are unknown.
    """
    (op1, c1), (op2, c2) = tests[0], tests[-1]
    if len(tests) == 2 and conjunction and {op1, op2} == {operator.ge, operator.le}:
        low, high = (c1, c2) if op1 is operator.ge else (c2, c1)

        def between(env: Env) -> object:  # the inclusive range check, most common of all
            v = env.get(key)
            if v is None:
                return None
            if v.__class__ is float:
                v = number_in(v)
                if v is None:
                    return None
            return low <= v <= high  # type: ignore[operator]

        return between
    if len(tests) == 2 and conjunction:

        def within(env: Env) -> object:
            v = env.get(key)
            if v is None:
                return None
            if v.__class__ is float:
                v = number_in(v)
                if v is None:
                    return None
            return op1(v, c1) and op2(v, c2)

        return within
    if len(tests) == 2:

        def outside(env: Env) -> object:
            v = env.get(key)
            if v is None:
                return None
            if v.__class__ is float:
                v = number_in(v)
                if v is None:
                    return None
            return op1(v, c1) or op2(v, c2)

        return outside
    return tests_on_value(read(key), tests, conjunction)


def tests_on_value(f: Fn, tests: tuple[tuple[Op, object], ...], conjunction: bool) -> Fn:
    """Like tests_on_name for a sub-expression written in each test: `age(B, D) >= 18 and age(B, D) <= 75`
    computes the age once."""
    (op1, c1), (op2, c2) = tests[0], tests[-1]
    if len(tests) == 2 and conjunction:

        def within(env: Env) -> object:
            v = f(env)
            return None if v is None else op1(v, c1) and op2(v, c2)

        return within
    combine = all if conjunction else any

    def several(env: Env) -> object:
        v = f(env)
        return None if v is None else combine(op(v, c) for op, c in tests)

    return several


def compare_value_const(op: Op, f: Fn, c: object) -> Fn:
    def compare(env: Env) -> object:
        v = f(env)
        return None if v is None else op(v, c)

    return compare


def compare_names(op: Op, left: str, right: str) -> Fn:
    read_left, read_right = read(left), read(right)

    def compare(env: Env) -> object:
        a = env.get(left)
        b = env.get(right)
        if a.__class__ is float or b.__class__ is float:
            a, b = read_left(env), read_right(env)
        if a is None or b is None:
            return None
        return op(a, b)

    return compare


def strict2(op: Op, f: Fn, g: Fn) -> Fn:
    """op(f, g), unknown when either side is; for comparisons and two-argument functions."""

    def apply(env: Env) -> object:
        a = f(env)
        if a is None:
            return None
        b = g(env)
        if b is None:
            return None
        return op(a, b)

    return apply


def compare_name_value(op: Op, key: str, g: Fn) -> Fn:
    """`item op expression`, e.g. `ALT <= 3 * ULN`."""

    def compare(env: Env) -> object:
        a = env.get(key)
        if a is None:
            return None
        if a.__class__ is float:
            a = number_in(a)
            if a is None:
                return None
        b = g(env)
        return None if b is None else op(a, b)

    return compare
