"""Closure factories: each returns a small function `env -> value | None` for one kind of node.

No source is generated: a compiled rule is a tree of these closures, built once per StudyVersion.
The name-shaped factories read the env directly instead of calling a child closure, because a
Python call is the dominant cost and most edit checks compare one item with a constant.
Every closure returns None (unknown) as soon as an operand it needs is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trialstack.protocol.rules.values import number_in

Env = Mapping[str, object]
Fn = Callable[[Env], object]
Op = Callable[[Any, Any], object]


def constant(value: object) -> Fn:
    def const(env: Env) -> object:
        return value

    return const


def read(key: str) -> Fn:
    """Read an item; a float is turned into a Decimal (see values.number_in)."""

    def name(env: Env) -> object:
        v = env.get(key)
        return number_in(v) if v.__class__ is float else v

    return name


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
    combine, reader = (all if conjunction else any), read(key)

    def several(env: Env) -> object:
        v = reader(env)
        return None if v is None else combine(op(v, c) for op, c in tests)

    return several


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
    """op(f, g), unknown when either side is; shared by comparisons and arithmetic."""

    def apply(env: Env) -> object:
        a = f(env)
        if a is None:
            return None
        b = g(env)
        if b is None:
            return None
        return op(a, b)

    return apply


def strict1(op: Callable[[object], object], f: Fn) -> Fn:
    def apply(env: Env) -> object:
        v = f(env)
        return None if v is None else op(v)

    return apply


def strict_n(op: Callable[..., object], fs: tuple[Fn, ...]) -> Fn:
    def apply(env: Env) -> object:
        values = [f(env) for f in fs]
        for v in values:
            if v is None:
                return None
        return op(*values)

    return apply


def lenient(op: Callable[..., object], fs: tuple[Fn, ...]) -> Fn:
    """A function that sees missing arguments itself (is_blank, is_present, coalesce)."""
    if len(fs) == 1:
        (f,) = fs

        def apply1(env: Env) -> object:
            return op(f(env))

        return apply1

    def apply(env: Env) -> object:
        return op(*[f(env) for f in fs])

    return apply


def lenient_name(op: Callable[[object], object], key: str) -> Fn:
    def apply(env: Env) -> object:
        return op(env.get(key))

    return apply


def member_name(key: str, choices: frozenset[object], negated: bool) -> Fn:
    if negated:

        def not_in(env: Env) -> object:
            v = env.get(key)
            if v.__class__ is float:
                v = number_in(v)
            return None if v is None else v not in choices

        return not_in

    def is_in(env: Env) -> object:
        v = env.get(key)
        if v.__class__ is float:
            v = number_in(v)
        return None if v is None else v in choices

    return is_in


def member(f: Fn, choices: frozenset[object], negated: bool) -> Fn:
    def apply(env: Env) -> object:
        v = f(env)
        return None if v is None else (v in choices) is not negated

    return apply


def negate(f: Fn) -> Fn:
    def apply(env: Env) -> object:
        v = f(env)
        return None if v is None else not v

    return apply


def all_of(fs: tuple[Fn, ...]) -> Fn:
    """Kleene `and`: False if any operand is False, else None if any is None, else True."""
    if len(fs) == 2:
        f, g = fs

        def and2(env: Env) -> object:
            a = f(env)
            if a is False:
                return False
            b = g(env)
            if b is False:
                return False
            return None if a is None or b is None else True

        return and2

    def and_n(env: Env) -> object:
        unknown = False
        for f in fs:
            v = f(env)
            if v is False:
                return False
            if v is None:
                unknown = True
        return None if unknown else True

    return and_n


def any_of(fs: tuple[Fn, ...]) -> Fn:
    """Kleene `or`: True if any operand is True, else None if any is None, else False."""
    if len(fs) == 2:
        f, g = fs

        def or2(env: Env) -> object:
            a = f(env)
            if a is True:
                return True
            b = g(env)
            if b is True:
                return True
            return None if a is None or b is None else False

        return or2

    def or_n(env: Env) -> object:
        unknown = False
        for f in fs:
            v = f(env)
            if v is True:
                return True
            if v is None:
                unknown = True
        return None if unknown else False

    return or_n
