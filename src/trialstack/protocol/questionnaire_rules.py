"""An instrument's logic, compiled once: which items show, what the scores are, which clinical alerts fire.

Answers arrive as text (the codes and numbers the participant chose). In expressions a single choice reads as its
option's score, a scale as its number, a date as a date; scores follow the instrument's missing-item rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType

from trialstack.protocol.definition_questionnaires import SCALES, AnswerType, Instrument, InstrumentItem
from trialstack.protocol.rules import CompiledRule, RuleType, compile_rule

_TYPES = {
    AnswerType.MULTIPLE_CHOICE: RuleType.TEXT,
    AnswerType.NUMERIC_RATING: RuleType.NUMBER,
    AnswerType.VISUAL_ANALOGUE: RuleType.NUMBER,
    AnswerType.DATE: RuleType.DATE,
    AnswerType.TIME: RuleType.TEXT,
    AnswerType.TEXT: RuleType.TEXT,
}


def item_rule_type(item: InstrumentItem) -> RuleType:
    if item.type is AnswerType.SINGLE_CHOICE:
        scored = item.options and all(option.value is not None for option in item.options)
        return RuleType.NUMBER if scored else RuleType.TEXT
    return _TYPES[item.type]


def instrument_symbols(instrument: Instrument, *, with_scores: bool = False) -> Mapping[str, RuleType]:
    symbols = {item.id: item_rule_type(item) for item in instrument.items}
    if with_scores:
        symbols.update({score.id: RuleType.NUMBER for score in instrument.scores})
    return MappingProxyType(symbols)


@dataclass(frozen=True)
class CompiledInstrument:
    instrument: Instrument
    show_if: Mapping[str, CompiledRule]
    scores: Mapping[str, CompiledRule]
    alerts: Mapping[str, CompiledRule]


@lru_cache(maxsize=64)
def compile_instrument(instrument: Instrument) -> CompiledInstrument:
    """Compile every expression (the study loader has type-checked them: this raises only on a bug)."""
    items = instrument_symbols(instrument)
    everything = instrument_symbols(instrument, with_scores=True)
    return CompiledInstrument(
        instrument,
        MappingProxyType({i.id: compile_rule(i.show_if, items) for i in instrument.items if i.show_if}),
        MappingProxyType({s.id: compile_rule(s.expression, items, expect=RuleType.NUMBER) for s in instrument.scores}),
        MappingProxyType({a.id: compile_rule(a.when, everything) for a in instrument.alerts}),
    )


def rule_value(item: InstrumentItem, answer: str | None) -> object | None:
    """How the rule language sees an answer (already validated by `answer_problem`)."""
    if answer is None or answer == "":
        return None
    if item.type is AnswerType.SINGLE_CHOICE and item_rule_type(item) is RuleType.NUMBER:
        option = item.option(answer)
        return option.value if option is not None else None
    if item.type in SCALES:
        return Decimal(answer) if "." in answer else int(answer)
    if item.type is AnswerType.DATE:
        return date.fromisoformat(answer)
    return answer


def answer_problem(item: InstrumentItem, answer: str) -> str | None:
    """Why an answer does not fit its item (None when it does)."""
    if item.type is AnswerType.SINGLE_CHOICE and item.option(answer) is None:
        return f"'{answer}' is not an option of {item.id} ({', '.join(o.code for o in item.options)})"
    if item.type is AnswerType.MULTIPLE_CHOICE:
        unknown = [code for code in answer.split(",") if item.option(code) is None]
        if unknown or not answer:
            return f"'{answer}' is not a comma-separated list of options of {item.id}"
    if item.type in SCALES:
        low, high = item.bounds
        try:
            number = Decimal(answer)
        except ArithmeticError:
            return f"{item.id} takes a number from {low} to {high}, got '{answer}'"
        if not number.is_finite() or not low <= number <= high:
            return f"{item.id} takes a number from {low} to {high}, got {answer}"
    if item.type is AnswerType.DATE:
        try:
            date.fromisoformat(answer)
        except ValueError:
            return f"{item.id} takes a date (YYYY-MM-DD), got '{answer}'"
    if item.type is AnswerType.TIME and not _is_time(answer):
        return f"{item.id} takes a time (HH:MM), got '{answer}'"
    if item.type is AnswerType.TEXT and len(answer) > item.max_length:
        return f"{item.id} takes at most {item.max_length} characters"
    return None


def _is_time(text: str) -> bool:
    hours, _, minutes = text.partition(":")
    return len(text) == 5 and hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60


def environment(instrument: Instrument, answers: Mapping[str, str]) -> dict[str, object | None]:
    return {item.id: rule_value(item, answers.get(item.id)) for item in instrument.items}


def shown_items(compiled: CompiledInstrument, answers: Mapping[str, str]) -> list[InstrumentItem]:
    """The items the participant sees: those whose `show_if` is not false (unknown shows the item)."""
    env = environment(compiled.instrument, answers)
    return [item for item in compiled.instrument.items if compiled.show_if.get(item.id, _always)(env) is not False]


def _always(_env: Mapping[str, object]) -> bool:
    return True


@dataclass(frozen=True)
class ScoreResult:
    score: str
    value: str | None
    missing: int


def score(compiled: CompiledInstrument, answers: Mapping[str, str]) -> list[ScoreResult]:
    """Every score; None when more items are missing than the instrument allows. Values are exact decimals."""
    env = environment(compiled.instrument, answers)
    results = []
    for definition in compiled.instrument.scores:
        rule = compiled.scores[definition.id]
        reads = sorted(rule.reads)
        answered = [env[name] for name in reads if env.get(name) is not None]
        missing = len(reads) - len(answered)
        value: object | None = None
        if missing <= definition.max_missing:
            filled = dict(env)
            if missing and definition.prorate and answered:
                mean = sum((Decimal(str(v)) for v in answered), Decimal(0)) / len(answered)
                filled.update({name: mean for name in reads if env.get(name) is None})
            value = rule(filled)
        results.append(ScoreResult(definition.id, _text(value), missing))
    return results


def _text(value: object | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        value = value.quantize(Decimal("0.01")).normalize()
        return format(value, "f")
    return str(value)


def alerts(compiled: CompiledInstrument, answers: Mapping[str, str], scores: list[ScoreResult]) -> list[str]:
    """The ids of the clinical alerts whose condition holds (unknown raises none)."""
    env = environment(compiled.instrument, answers)
    env.update({result.score: Decimal(result.value) if result.value is not None else None for result in scores})
    return [alert_id for alert_id, rule in compiled.alerts.items() if rule(env) is True]
