"""Edit checks and eligibility criteria: rule expressions that must hold.

An expression that is false raises the check; one that is unknown (a value it reads is missing)
raises nothing, so a check never fires on a form that is only half entered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from trialstack.protocol.definition_base import (
    CheckAction,
    Expression,
    Identifier,
    ProtocolModel,
    RuleId,
    Text,
)
from trialstack.protocol.definition_forms import Form, Item


class EditCheck(ProtocolModel):
    """A data-quality rule on one form; the query it raises sits on `item`.

    `visits` restricts it to some of the visits that schedule the form (empty: all of them).
    """

    id: RuleId
    form: Identifier
    item: Identifier
    expression: Expression
    message: Text
    action: CheckAction = CheckAction.QUERY
    visits: tuple[Identifier, ...] = ()


class CriterionKind(StrEnum):
    INCLUSION = "inclusion"
    EXCLUSION = "exclusion"


class EligibilityCriterion(ProtocolModel):
    """A protocol criterion; `expression` is true when the subject is eligible on this criterion.

    For an exclusion criterion that means the exclusion does *not* apply.
    """

    id: RuleId
    kind: CriterionKind
    text: Text
    expression: Expression


class Eligibility(ProtocolModel):
    """The criteria, evaluated in the context of the form that records eligibility (`form`)."""

    form: Identifier
    criteria: tuple[EligibilityCriterion, ...] = Field(min_length=1)


def _literal(number: int | Decimal) -> str:
    return format(number, "f") if isinstance(number, Decimal) else str(number)


def range_check(form: Form, item: Item) -> EditCheck | None:
    """The edit check an item's `range` stands for, or None when the item has no range."""
    limits = item.range
    if limits is None or (limits.min is None and limits.max is None):
        return None
    low = None if limits.min is None else _literal(limits.min)
    high = None if limits.max is None else _literal(limits.max)
    terms = [f"{item.id} >= {low}"] if low is not None else []
    terms += [f"{item.id} <= {high}"] if high is not None else []
    unit = f" {item.unit}" if item.unit else ""
    if low is not None and high is not None:
        expected = f"between {low} and {high}{unit}"
    else:
        expected = f"at least {low}{unit}" if low is not None else f"at most {high}{unit}"
    return EditCheck(
        id=f"{form.id}-{item.id}-RANGE",
        form=form.id,
        item=item.id,
        expression=" and ".join(terms),
        message=limits.message or f"{item.label} is expected to be {expected}; please verify.",
        action=limits.action,
    )


def range_checks(forms: Iterable[Form]) -> Iterator[tuple[Form, Item, EditCheck]]:
    """Every check derived from an item range, with the form and item it came from."""
    for form in forms:
        for item in form.items:
            check = range_check(form, item)
            if check is not None:
                yield form, item, check
