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


def read_date(key: str) -> Fn:
    """Read a DATETIME item as its calendar date (to compare it with a DATE)."""

    def name(env: Env) -> object:
        v = env.get(key)
        return None if v is None else v.date()  # type: ignore[attr-defined]

    return name


def blank_name(key: str, text: bool, present: bool) -> Fn:
    """is_blank / is_present of an item, inline; only TEXT can be blank without being missing."""
    if text:

        def blank_text(env: Env) -> object:
            v = env.get(key)
            return (v is None or (isinstance(v, str) and not v.strip())) is not present

        return blank_text

    if present:

        def entered(env: Env) -> object:
            return env.get(key) is not None

        return entered

    def missing(env: Env) -> object:
        return env.get(key) is None

    return missing


def guarded(key: str, text: bool, present: bool, short: bool, rest: Fn) -> Fn:
    """`is_blank(K) or rest`, `is_present(K) and rest` and the like, with the test done inline.

    The test is never unknown, so unless it decides the result (`short`: True for `or`, False for
    `and`) the result is exactly `rest`'s: in Kleene logic `False or x` and `True and x` are x.
    """
    if text:

        def guard_text(env: Env) -> object:
            v = env.get(key)
            if ((v is None or (isinstance(v, str) and not v.strip())) is not present) is short:
                return short
            return rest(env)

        return guard_text
    if (not present) is short:  # the test decides when the item is missing

        def when_missing(env: Env) -> object:
            return short if env.get(key) is None else rest(env)

        return when_missing

    def when_entered(env: Env) -> object:
        return short if env.get(key) is not None else rest(env)

    return when_entered


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
