"""What the compiler knows about a compiled sub-expression besides its closure, for the fast paths."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from trialstack.protocol.rules.closures import Fn, Op, constant
from trialstack.protocol.rules.types import RuleType

_EMPTY: Mapping[str, object] = {}


@dataclass(frozen=True, slots=True)
class Code:
    """A compiled sub-expression: its closure and static type, plus the shape facts fusions look for."""

    fn: Fn
    type: RuleType
    const: bool = False
    value: object = None
    key: str | None = None  # the item name, when the node is a plain read of it
    test: Test | None = None  # set when the node is `subject op constant`
    blank: Blank | None = None  # set when the node is is_blank(item) or is_present(item)


@dataclass(frozen=True, slots=True)
class Test:
    subject: Hashable  # equal for the same sub-expression (and the same coercion) written twice
    code: Code
    op: Op
    constant: object


@dataclass(frozen=True, slots=True)
class Blank:
    key: str
    text: bool  # only TEXT can be blank without being missing
    present: bool  # is_present rather than is_blank


def const(value: object, type_: RuleType) -> Code:
    return Code(constant(value), type_, const=True, value=value)


def fold(code: Code, *parts: Code) -> Code:
    """Compute a node whose operands are all constants now, once."""
    return const(code.fn(_EMPTY), code.type) if all(p.const for p in parts) else code
