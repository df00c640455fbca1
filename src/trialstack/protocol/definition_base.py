"""Shared building blocks of the StudyDefinition: the frozen base model and the identifier types.

Identifiers of visits, forms and items are upper case so they can be used as names in rule
expressions without ever colliding with the rule language's lower-case keywords (`and`, `in`, ...).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

MAX_SAFE_INTEGER = 2**53 - 1


class ProtocolModel(BaseModel):
    """Every part of a StudyDefinition: immutable, and no key that the format does not define."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _number_as_text(value: object) -> object:
    """Version labels such as `1.0` are numbers to YAML; the loader keeps their text, so accept them."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return value


def _exact_number(value: object) -> object:
    """Text such as "34.0" (a canonical JSON decimal) becomes Decimal("34.0"), not the int 34: scale is content."""
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except ArithmeticError:
            return value
        return number if number.is_finite() else value
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(f"{value} is beyond the exact integers of JSON (2**53 - 1)")
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


# A name usable in a rule expression: VS, SYSBP, WEEK2, SCREENING.
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$", max_length=40)]
# The id of an edit check, a criterion or a consent document: VS-SBP-RANGE, IN01, ICF.
RuleId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_.-]*$", max_length=64)]
# Site numbers keep their leading zeros ("0101"), so they are text, never numbers.
SiteId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=20)]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]
Label = Annotated[str, BeforeValidator(_number_as_text), StringConstraints(min_length=1)]
Expression = Annotated[str, StringConstraints(min_length=1)]
# Numbers are exact: int or Decimal, never float, because the definition is hashed as canonical JSON.
Number = Annotated[
    int | Annotated[Decimal, Field(allow_inf_nan=False)],
    BeforeValidator(_exact_number),
]


class CheckAction(StrEnum):
    """What a failed check does: open a data clarification (query) or refuse the save (block)."""

    QUERY = "query"
    BLOCK = "block"
