"""Do the questionnaires hold together? Items, options, scales, expressions, schedules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.definition_questionnaires import CHOICES, SCALES, Instrument
from trialstack.protocol.problems import Finding
from trialstack.protocol.questionnaire_rules import instrument_symbols
from trialstack.protocol.rules import RuleCompileError, RuleType, compile_rule


def _twice(values: Sequence[str], pointer: str, what: str, key: str) -> Iterator[Finding]:
    for index, value in enumerate(values):
        if value in values[:index]:
            yield Finding(f"{pointer}/{index}/{key}", f"duplicate {what} '{value}'")


def check_questionnaires(definition: StudyDefinition) -> Iterator[Finding]:
    questionnaires = definition.questionnaires
    if questionnaires is None:
        return
    yield from _twice([i.id for i in questionnaires.instruments], "/questionnaires/instruments", "instrument", "id")
    visits = [visit.id for visit in definition.schedule.visits]
    for n, instrument in enumerate(questionnaires.instruments):
        at = f"/questionnaires/instruments/{n}"
        yield from _check_items(instrument, at)
        yield from _check_expressions(instrument, at)
        yield from _check_schedule(instrument, at, visits)


def _check_items(instrument: Instrument, at: str) -> Iterator[Finding]:
    yield from _twice([item.id for item in instrument.items], f"{at}/items", "item", "id")
    yield from _twice([score.id for score in instrument.scores], f"{at}/scores", "score", "id")
    item_ids = {item.id for item in instrument.items}
    for s, score in enumerate(instrument.scores):
        if score.id in item_ids:
            yield Finding(f"{at}/scores/{s}/id", f"score '{score.id}' has the name of an item")
    for i, item in enumerate(instrument.items):
        where = f"{at}/items/{i}"
        if item.type in CHOICES and len(item.options) < 2:
            yield Finding(f"{where}/options", f"a {item.type.value} item needs at least two options")
        if item.type not in CHOICES and item.options:
            yield Finding(f"{where}/options", f"a {item.type.value} item has no options")
        yield from _twice([option.code for option in item.options], f"{where}/options", "option code", "code")
        if item.type in SCALES:
            low, high = item.bounds
            if low >= high:
                yield Finding(f"{where}/max", f"the scale's max {high} must be above its min {low}")
        elif item.min is not None or item.max is not None:
            yield Finding(f"{where}/min", "min and max apply to numeric rating and visual analogue scales")


def _compile(source: str, symbols: dict[str, RuleType], pointer: str, expect: RuleType | None) -> Iterator[Finding]:
    try:
        compile_rule(source, symbols, expect=expect)
    except RuleCompileError as error:
        for rule_error in error.errors:
            position = (rule_error.line, rule_error.column) if rule_error.line > 0 else None
            yield Finding(pointer, rule_error.message, expression_at=position)


def _check_expressions(instrument: Instrument, at: str) -> Iterator[Finding]:
    items = dict(instrument_symbols(instrument))
    everything = dict(instrument_symbols(instrument, with_scores=True))
    for i, item in enumerate(instrument.items):
        if item.show_if:
            yield from _compile(item.show_if, items, f"{at}/items/{i}/show_if", RuleType.BOOLEAN)
    for s, score in enumerate(instrument.scores):
        yield from _compile(score.expression, items, f"{at}/scores/{s}/expression", RuleType.NUMBER)
    for a, alert in enumerate(instrument.alerts):
        yield from _compile(alert.when, everything, f"{at}/alerts/{a}/when", RuleType.BOOLEAN)


def _check_schedule(instrument: Instrument, at: str, visits: list[str]) -> Iterator[Finding]:
    known = ", ".join(visits)
    for v, visit in enumerate(instrument.schedule.visits):
        if visit not in visits:
            yield Finding(f"{at}/schedule/visits/{v}", f"unknown visit '{visit}' (known: {known})")
    diary = instrument.schedule.diary
    if diary is None:
        if not instrument.schedule.visits:
            yield Finding(f"{at}/schedule", "the instrument is never due: give visits or a diary")
        return
    for key in ("from_visit", "until_visit"):
        visit = getattr(diary, key)
        if visit is not None and visit not in visits:
            yield Finding(f"{at}/schedule/diary/{key}", f"unknown visit '{visit}' (known: {known})")
    order = {visit: n for n, visit in enumerate(visits)}
    if order.get(diary.until_visit or "", len(visits)) <= order.get(diary.from_visit, -1):
        yield Finding(f"{at}/schedule/diary/until_visit", f"{diary.until_visit} is not after {diary.from_visit}")
    if diary.opens >= diary.closes:
        yield Finding(f"{at}/schedule/diary/closes", "an entry's window closes after it opens, on the same day")
