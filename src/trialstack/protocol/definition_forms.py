"""Case report forms, their items, and the code lists that choice items draw from."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from trialstack.protocol.definition_base import (
    CheckAction,
    Expression,
    Identifier,
    Number,
    ProtocolModel,
    Text,
)


class ItemType(StrEnum):
    """The data type of an item, as collected (ODM DataType, narrowed)."""

    INTEGER = "integer"
    DECIMAL = "decimal"
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    BOOLEAN = "boolean"
    CHOICE = "choice"


NUMERIC_TYPES = frozenset({ItemType.INTEGER, ItemType.DECIMAL})


class CodelistItem(ProtocolModel):
    """One permitted value: the stored `code` and the `decode` shown to the site."""

    code: Text
    decode: Text


class Codelist(ProtocolModel):
    id: Identifier
    name: Text | None = None
    items: tuple[CodelistItem, ...] = Field(min_length=1)

    def codes(self) -> tuple[str, ...]:
        return tuple(item.code for item in self.items)


class Range(ProtocolModel):
    """Plausibility limits of a numeric item, inclusive.

    The validator derives one edit check per range (`<FORM>-<ITEM>-RANGE`), so ranges and explicit
    checks run through the same engine and raise the same kind of query.
    """

    min: Number | None = None
    max: Number | None = None
    action: CheckAction = CheckAction.QUERY
    message: Text | None = None


class Item(ProtocolModel):
    """One question of a form.

    `show_if` hides the item (and waives `required`) while it is false; a `derived` item is computed
    from its expression and never entered. `sdv: true` marks it for targeted source data verification.
    `personal: true` marks personal data (names, initials, date of birth, contact details): its values never
    enter an event payload but live in the personal-data vault, encrypted per subject (DESIGN.md §2).
    """

    id: Identifier
    label: Text
    type: ItemType
    codelist: Identifier | None = None
    unit: Text | None = None
    range: Range | None = None
    required: bool = False
    show_if: Expression | None = None
    derived: Expression | None = None
    sdv: bool = False
    personal: bool = False
    max_length: int | None = Field(default=None, ge=1, le=4000)
    max_digits: int | None = Field(default=None, ge=1, le=30)
    fraction_digits: int | None = Field(default=None, ge=0, le=15)


class Form(ProtocolModel):
    """A case report form; a `repeating` form is a log (adverse events, concomitant medications)."""

    id: Identifier
    name: Text
    repeating: bool = False
    items: tuple[Item, ...] = Field(min_length=1)

    def item(self, item_id: str) -> Item | None:
        return next((item for item in self.items if item.id == item_id), None)
