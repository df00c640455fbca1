"""The names a rule expression may use, with their types: the symbol tables the rule checker needs.

Every expression sees `FORM.ITEM` for any form, `VISIT.FORM.ITEM` for each visit that schedules the
form, `VISIT.VISIT_DATE` for each visit, and the subject-level names (`SITE`, `COUNTRY`). An
expression that belongs to a form also sees that form's items by their bare names and, when the form
is collected at visits, `VISIT_DATE`: the date of the visit the form instance belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from trialstack.protocol.definition import Item, ItemType, StudyDefinition
from trialstack.protocol.rules import RuleType

VISIT_DATE = "VISIT_DATE"
SUBJECT_SYMBOLS: Mapping[str, RuleType] = MappingProxyType({"SITE": RuleType.TEXT, "COUNTRY": RuleType.TEXT})
RESERVED_NAMES = frozenset({VISIT_DATE, *SUBJECT_SYMBOLS})

RULE_TYPES: Mapping[ItemType, RuleType] = MappingProxyType(
    {
        ItemType.INTEGER: RuleType.NUMBER,
        ItemType.DECIMAL: RuleType.NUMBER,
        ItemType.TEXT: RuleType.TEXT,
        ItemType.CHOICE: RuleType.TEXT,
        ItemType.TIME: RuleType.TEXT,
        ItemType.DATE: RuleType.DATE,
        ItemType.DATETIME: RuleType.DATETIME,
        ItemType.BOOLEAN: RuleType.BOOLEAN,
    }
)


def rule_value(item_type: ItemType, text: str | None) -> object:
    """The rule-language value of canonical text (None stays None: a missing value)."""
    if text is None:
        return None
    if item_type is ItemType.INTEGER:
        return int(text)
    if item_type is ItemType.DECIMAL:
        try:
            return Decimal(text)
        except InvalidOperation:
            return None
    if item_type is ItemType.DATE:
        return date.fromisoformat(text)
    if item_type is ItemType.DATETIME:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if item_type is ItemType.BOOLEAN:
        return text == "true"
    if item_type is ItemType.TIME:
        return time.fromisoformat(text).isoformat()
    return text


def rule_type(item: Item) -> RuleType:
    """How the rule language sees an item's value (a choice is its code, as text)."""
    return RULE_TYPES[item.type]


@dataclass(frozen=True)
class StudySymbols:
    """The study-wide names, built once per definition, and the per-form layers on top of them."""

    definition: StudyDefinition
    study: Mapping[str, RuleType]

    def for_form(self, form_id: str | None, *, at_visit: bool | None = None) -> Mapping[str, RuleType]:
        """The names visible to an expression owned by `form_id` (None: owned by no form).

        `at_visit` says whether the expression runs at a visit (so `VISIT_DATE` is known); by default,
        when the form is scheduled at some visit.
        """
        form = self.definition.form(form_id) if form_id is not None else None
        local: dict[str, RuleType] = {item.id: rule_type(item) for item in form.items} if form else {}
        if at_visit is None:
            at_visit = form_id is not None and bool(self.definition.schedule.visits_with_form(form_id))
        if at_visit:
            local[VISIT_DATE] = RuleType.DATE
        return MappingProxyType({**self.study, **local})


def study_symbols(definition: StudyDefinition) -> StudySymbols:
    """Build the names every expression of `definition` may use."""
    names: dict[str, RuleType] = dict(SUBJECT_SYMBOLS)
    for visit in definition.schedule.visits:
        names[f"{visit.id}.{VISIT_DATE}"] = RuleType.DATE
    for form in definition.forms:
        visits = definition.schedule.visits_with_form(form.id)
        for item in form.items:
            names[f"{form.id}.{item.id}"] = rule_type(item)
            for visit in visits:
                names[f"{visit.id}.{form.id}.{item.id}"] = rule_type(item)
    return StudySymbols(definition, MappingProxyType(names))


@dataclass(frozen=True)
class NameReference:
    """What a name in an expression refers to; the parts that do not apply are None."""

    visit: str | None = None
    form: str | None = None
    item: str | None = None


def refer(name: str, form_id: str | None) -> NameReference:
    """Split a name as the rule language reads it: ITEM, FORM.ITEM, VISIT.FORM.ITEM or VISIT.VISIT_DATE."""
    parts = name.split(".")
    if len(parts) == 1:
        return NameReference() if name in RESERVED_NAMES else NameReference(form=form_id, item=name)
    if len(parts) == 2:
        if parts[1] == VISIT_DATE:
            return NameReference(visit=parts[0])
        return NameReference(form=parts[0], item=parts[1])
    return NameReference(visit=parts[0], form=parts[1], item=".".join(parts[2:]))
