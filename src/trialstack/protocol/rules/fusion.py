"""Rewrites of the operand list of an n-ary `and` / `or` into fewer closures.

Kleene `and` and `or` are commutative and associative and evaluation has no side effects, so
operands may be regrouped and reordered without changing any result; the property test checks it.
"""

from __future__ import annotations

from collections.abc import Hashable

from trialstack.protocol.rules import closures as c
from trialstack.protocol.rules import compare as cmp
from trialstack.protocol.rules.code import Code, Test
from trialstack.protocol.rules.types import RuleType


def grouped(codes: list[Code], conjunction: bool) -> list[Code]:
    """Merge comparisons of one subject with constants (a range check) into one closure.

    `X >= 60 and X <= 250` reads X once; `age(B, D) >= 18 and age(B, D) <= 75` computes age once.
    """
    groups: dict[Hashable, list[Test]] = {}
    for code in codes:
        if code.test is not None:
            groups.setdefault(code.test.subject, []).append(code.test)
    merged: list[Code] = []
    done: set[Hashable] = set()
    for code in codes:
        test = code.test
        if test is None or len(groups[test.subject]) == 1:
            merged.append(code)
        elif test.subject not in done:
            done.add(test.subject)
            pairs = tuple((t.op, t.constant) for t in groups[test.subject])
            subject = test.code
            if subject.key is not None:
                merged.append(Code(cmp.tests_on_name(subject.key, pairs, conjunction), RuleType.BOOLEAN))
            else:
                merged.append(Code(cmp.tests_on_value(subject.fn, pairs, conjunction), RuleType.BOOLEAN))
    return merged


def combined(codes: list[Code], conjunction: bool) -> c.Fn:
    """One closure for the operands: an is_blank/is_present guard first, as in
    `is_blank(AEENDAT) or AEENDAT >= AESTDAT` and `SEX != "F" or is_present(PREGRES)`."""
    guard = next((code for code in codes if code.blank is not None), None)
    if guard is not None and guard.blank is not None and len(codes) > 1:
        rest = [code for code in codes if code is not guard]
        blank = guard.blank
        return c.guarded(blank.key, blank.text, blank.present, not conjunction, combined(rest, conjunction))
    if len(codes) == 1:
        return codes[0].fn
    fns = tuple(code.fn for code in codes)
    return c.all_of(fns) if conjunction else c.any_of(fns)
