"""Which stratum a subject falls in: each factor's level whose `when` holds on the subject's data. Pure.

The data is what capture recorded (its events, folded by the handler into `SubjectData`); the expressions are the
protocol's, compiled once per StudyVersion. A factor none of whose levels holds (a value missing) or more than one
of whose levels hold refuses the randomization with the names it read, so the site knows what to enter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trialstack.errors import DomainRuleViolation
from trialstack.protocol.definition import SITE_FACTOR, ItemType, Randomization, StudyDefinition
from trialstack.protocol.rules import CompiledRule, compile_rule, names_in
from trialstack.protocol.symbols import VISIT_DATE, rule_value, study_symbols


class RandomizationRefused(DomainRuleViolation):
    code = "randomization-refused"


@dataclass(frozen=True)
class SubjectData:
    """A subject's recorded values as text by form instance and item (`DAY1.VS`, `SYSBP`), and visit dates."""

    site_id: str
    values: Mapping[tuple[str, str], str | None] = field(default_factory=dict)
    visit_dates: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stratum:
    code: str
    levels: dict[str, str]
    """Factor id → level code, the site included as `SITE` when randomization is by site."""
    values: dict[str, str | None]
    """Each name the factors read → its text (None: missing)."""


@dataclass(frozen=True)
class CompiledStrata:
    factors: tuple[tuple[str, tuple[tuple[str, CompiledRule], ...]], ...]
    names: frozenset[str]


def compile_strata(definition: StudyDefinition) -> CompiledStrata:
    randomization = definition.randomization
    if randomization is None:
        return CompiledStrata((), frozenset())
    symbols = study_symbols(definition).for_form(None, at_visit=False)
    factors = tuple(
        (factor.id, tuple((level.code, compile_rule(level.when, symbols)) for level in factor.levels))
        for factor in randomization.strata.factors
    )
    names = frozenset(
        name for factor in randomization.strata.factors for lv in factor.levels for name in names_in(lv.when)
    )
    return CompiledStrata(factors, names)


def _item_types(definition: StudyDefinition) -> dict[str, ItemType]:
    return {f"{form.id}.{item.id}": item.type for form in definition.forms for item in form.items}


def environment(definition: StudyDefinition, data: SubjectData, names: frozenset[str]) -> dict[str, object]:
    """The rule-language values of the names the strata read: `VISIT.FORM.ITEM`, `FORM.ITEM` (any instance,
    the last recorded), `VISIT.VISIT_DATE`, `SITE` and `COUNTRY`."""
    types = _item_types(definition)
    site = next((s for s in definition.sites if s.id == data.site_id), None)
    env: dict[str, object] = {"SITE": data.site_id, "COUNTRY": site.country if site else None}
    for (form_key, item), text in data.values.items():
        parts = form_key.split(".")
        kind = types.get(f"{parts[-1]}.{item}")
        if kind is None:
            continue
        value = rule_value(kind, text)
        env[f"{parts[-1]}.{item}"] = value
        if len(parts) == 2:
            env[f"{form_key}.{item}"] = value
    for visit, day in data.visit_dates.items():
        env[f"{visit}.{VISIT_DATE}"] = rule_value(ItemType.DATE, day)
    return {name: env.get(name) for name in names | {"SITE", "COUNTRY"}}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def stratify(
    randomization: Randomization, compiled: CompiledStrata, definition: StudyDefinition, data: SubjectData
) -> Stratum:
    env = environment(definition, data, compiled.names)
    levels: dict[str, str] = {SITE_FACTOR: data.site_id} if randomization.strata.by_site else {}
    read = {name: _text(env.get(name)) for name in sorted(compiled.names)}
    for factor_id, options in compiled.factors:
        holding = [code for code, rule in options if rule(env) is True]
        if not holding:
            missing = [name for name in sorted(compiled.names) if env.get(name) is None]
            why = f": {', '.join(missing)} not recorded" if missing else f" with {read}"
            raise RandomizationRefused(
                f"stratification factor {factor_id} cannot be decided{why}", field="stratification"
            )
        if len(holding) > 1:
            raise RandomizationRefused(
                f"stratification factor {factor_id} has more than one level holding ({', '.join(holding)}) with "
                f"{read}: the protocol's levels overlap",
                field="stratification",
            )
        levels[factor_id] = holding[0]
    code = "/".join(levels.values()) or "ALL"
    return Stratum(code, levels, read)


def all_strata(definition: StudyDefinition) -> list[str]:
    """Every stratum code the protocol can produce, in a stable order (sites × each factor's levels)."""
    randomization = definition.randomization
    if randomization is None:
        return []
    codes: list[list[str]] = [[site.id for site in definition.sites]] if randomization.strata.by_site else []
    codes += [[level.code for level in factor.levels] for factor in randomization.strata.factors]
    strata = [""]
    for options in codes:
        strata = [f"{prefix}/{option}" if prefix else option for prefix in strata for option in options]
    return [code or "ALL" for code in strata]
