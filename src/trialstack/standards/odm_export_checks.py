"""Edit checks as ODM RangeChecks: a comparison of the item with literals becomes Comparator + CheckValues,
which any ODM tool can run; any other check travels as a FormalExpression in the TrialStack rule language.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trialstack.protocol.definition import EditCheck, Form, Item, range_check
from trialstack.protocol.rules import RuleCompileError, parse
from trialstack.protocol.rules.ast import Call, Compare, Const, Expr, Member, Name, Neg

_COMPARATORS = {"<": "LT", "<=": "LE", ">": "GT", ">=": "GE", "==": "EQ", "!=": "NE"}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class RangeCheckOut:
    """A RangeCheck to write: comparator + values, or a TrialStack expression; soft or hard; message."""

    comparator: str | None
    values: tuple[str, ...]
    expression: str | None
    soft: bool
    message: str


def literal_text(node: Expr) -> str | None:
    """The CheckValue text of a literal node (`180`, `"M"`, `date("2020-01-01")`), None if not a literal."""
    if isinstance(node, Const) and node.value is not None:
        value = node.value
        if isinstance(value, bool):
            return "true" if value else "false"
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    if isinstance(node, Neg) and isinstance(node.operand, Const) and isinstance(node.operand.value, int | Decimal):
        return "-" + (literal_text(node.operand) or "")
    if isinstance(node, Call) and node.function in ("date", "datetime") and len(node.args) == 1:
        inner = node.args[0]
        return inner.value if isinstance(inner, Const) and isinstance(inner.value, str) else None
    return None


def as_range_check(check: EditCheck) -> RangeCheckOut:
    """A check on its own item against literals as Comparator + CheckValues; anything else as an expression."""
    soft = check.action.value == "query"
    try:
        tree = parse(check.expression)
    except RuleCompileError:
        tree = None
    if isinstance(tree, Compare):
        for name, other, op in ((tree.left, tree.right, tree.op), (tree.right, tree.left, _FLIPPED[tree.op])):
            value = literal_text(other)
            if isinstance(name, Name) and name.name == check.item and value is not None:
                return RangeCheckOut(_COMPARATORS[op], (value,), None, soft, check.message)
    if isinstance(tree, Member) and isinstance(tree.operand, Name) and tree.operand.name == check.item:
        values = tuple(literal_text(item) for item in tree.items)
        if all(value is not None for value in values):
            return RangeCheckOut(
                "NOTIN" if tree.negated else "IN", tuple(v for v in values if v is not None), None, soft, check.message
            )
    return RangeCheckOut(None, (), check.expression, soft, check.message)


def range_as_checks(form: Form, item: Item) -> list[EditCheck]:
    """An item range as two one-sided checks (ODM comparators are one-sided), with the range's message."""
    check = range_check(form, item)
    if check is None or item.range is None:
        return []
    bounds = ((">=", item.range.min), ("<=", item.range.max))
    return [
        check.model_copy(update={"expression": f"{item.id} {op} {format(limit, 'f')}"})
        for op, limit in bounds
        if limit is not None
    ]
