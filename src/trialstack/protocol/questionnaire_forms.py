"""A case report form read as a questionnaire: the instrument a form's items make when participants complete it.

Used where a study arrives with its questionnaires as forms (CDISC ODM has no questionnaire element; a form of the
SDTM QS domain is one). Choices keep their code list, bounded whole numbers become rating scales, and dates, times
and text stay what they are; the form stays a form as well. Scores and alerts are not in a form: none are made.
"""

from __future__ import annotations

import re

from trialstack.protocol.definition import Form, Item, ItemType, StudyDefinition
from trialstack.protocol.definition_questionnaires import (
    AnswerOption,
    AnswerType,
    Instrument,
    InstrumentItem,
    InstrumentSchedule,
)
from trialstack.protocol.rules import RuleCompileError, names_in

_PLAIN = {ItemType.DATE: AnswerType.DATE, ItemType.TIME: AnswerType.TIME}
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,20}$")


def _answer(definition: StudyDefinition, item: Item) -> dict[str, object]:
    if item.type is ItemType.CHOICE and item.codelist is not None:
        codelist = definition.codelist(item.codelist)
        entries = codelist.items if codelist is not None else ()
        if len(entries) >= 2 and all(_CODE.match(entry.code) for entry in entries):
            options = tuple(AnswerOption(code=entry.code, label=entry.decode) for entry in entries)
            return {"type": AnswerType.SINGLE_CHOICE, "options": options}
    if item.type is ItemType.BOOLEAN:
        return {"type": AnswerType.SINGLE_CHOICE, "options": (AnswerOption(code="Y", label="Yes"),
                                                              AnswerOption(code="N", label="No"))}  # fmt: skip
    if item.type is ItemType.INTEGER and item.range is not None and item.range.min is not None and item.range.max:
        low, high = int(item.range.min), int(item.range.max)
        if 0 <= low < high <= 100:
            return {"type": AnswerType.NUMERIC_RATING if high <= 10 else AnswerType.VISUAL_ANALOGUE,
                    "min": low, "max": high}  # fmt: skip
    if item.type in _PLAIN:
        return {"type": _PLAIN[item.type]}
    return {"type": AnswerType.TEXT, "max_length": item.max_length or 500}


def _reads_only(expression: str, names: set[str]) -> bool:
    """A condition the questionnaire can evaluate (it reads only the form's own items); others are dropped."""
    try:
        return names_in(expression) <= names
    except RuleCompileError:
        return False


def instrument_from_form(definition: StudyDefinition, form: Form) -> Instrument:
    """The instrument of `form`, due at the visits that collect it (on the site tablet).

    A `show_if` that reads other forms is dropped (the item is then always asked, and optional).
    """
    asked = [item for item in form.items if item.derived is None]
    own = {item.id for item in asked}
    items = []
    for item in asked:
        show_if = item.show_if if item.show_if and _reads_only(item.show_if, own) else None
        required = item.required and (show_if is not None or item.show_if is None)
        fields = {"id": item.id, "text": item.label, "required": required, "show_if": show_if}
        items.append(InstrumentItem.model_validate({**fields, **_answer(definition, item)}))
    visits = tuple(visit.id for visit in definition.schedule.visits if form.id in visit.forms)
    return Instrument(
        id=form.id,
        name=form.name,
        version=definition.study.protocol_version,
        items=tuple(items),
        schedule=InstrumentSchedule(visits=visits),
    )
