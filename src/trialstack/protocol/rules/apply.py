"""Closure factories for arithmetic and function calls (see closures.py for the rest).

Arithmetic closures catch ArithmeticError themselves: an undefined result is unknown, like a missing
operand. The name-shaped factories read dates and text straight from the env; NUMBER names go through
closures.read so floats become Decimals.
"""

from __future__ import annotations

from collections.abc import Callable

from trialstack.protocol.rules.closures import Env, Fn, Op
from trialstack.protocol.rules.values import number_in


def arith(op: Op, f: Fn, g: Fn) -> Fn:
    def apply(env: Env) -> object:
        a = f(env)
        if a is None:
            return None
        b = g(env)
        if b is None:
            return None
        try:
            return op(a, b)
        except ArithmeticError:
            return None

    return apply


def arith_right(op: Op, f: Fn, c: object) -> Fn:
    """`f op constant`."""

    def apply(env: Env) -> object:
        a = f(env)
        if a is None:
            return None
        try:
            return op(a, c)
        except ArithmeticError:
            return None

    return apply


def arith_left(op: Op, c: object, g: Fn) -> Fn:
    """`constant op g`."""

    def apply(env: Env) -> object:
        b = g(env)
        if b is None:
            return None
        try:
            return op(c, b)
        except ArithmeticError:
            return None

    return apply


def arith_name_right(op: Op, key: str, c: object) -> Fn:
    """`item op constant` for a NUMBER item (the most common arithmetic: `HEIGHT / 100`)."""

    def apply(env: Env) -> object:
        a = env.get(key)
        if a is None:
            return None
        if a.__class__ is float:
            a = number_in(a)
            if a is None:
                return None
        try:
            return op(a, c)
        except ArithmeticError:
            return None

    return apply


def arith_name_left(op: Op, c: object, key: str) -> Fn:
    """`constant op item` for a NUMBER item (`3 * ULN`)."""

    def apply(env: Env) -> object:
        b = env.get(key)
        if b is None:
            return None
        if b.__class__ is float:
            b = number_in(b)
            if b is None:
                return None
        try:
            return op(c, b)
        except ArithmeticError:
            return None

    return apply


def arith_name_first(op: Op, key: str, g: Fn) -> Fn:
    """`item op expression` for a NUMBER item (`BMI - WEIGHT / ...`)."""

    def apply(env: Env) -> object:
        a = env.get(key)
        if a is None:
            return None
        if a.__class__ is float:
            a = number_in(a)
            if a is None:
                return None
        b = g(env)
        if b is None:
            return None
        try:
            return op(a, b)
        except ArithmeticError:
            return None

    return apply


def arith_name_second(op: Op, f: Fn, key: str) -> Fn:
    """`expression op item` for a NUMBER item."""

    def apply(env: Env) -> object:
        a = f(env)
        if a is None:
            return None
        b = env.get(key)
        if b is None:
            return None
        if b.__class__ is float:
            b = number_in(b)
            if b is None:
                return None
        try:
            return op(a, b)
        except ArithmeticError:
            return None

    return apply


def call_name(op: Callable[[object], object], key: str) -> Fn:
    """A strict one-argument function of an item that is not a NUMBER."""

    def apply(env: Env) -> object:
        v = env.get(key)
        return None if v is None else op(v)

    return apply


def call_names(op: Op, first: str, second: str) -> Fn:
    """A strict two-argument function of two items that are not NUMBERs, e.g. age(BRTHDAT, ICDAT)."""

    def apply(env: Env) -> object:
        a = env.get(first)
        if a is None:
            return None
        b = env.get(second)
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
