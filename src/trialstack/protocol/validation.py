"""Does a structurally valid StudyDefinition hold together? Every problem, all at once, by JSON pointer.

Structure (types, unknown keys) is Pydantic's job (`structure`); this module checks what a schema
cannot: unique identifiers, references that resolve, a consistent schedule (`validation_schedule`)
and expressions that compile against the study's symbols (`validation_rules`).
`pruned` names entities the loader had to leave out: references to them are not reported again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from trialstack.protocol.definition import BlindingLevel, ItemType, StudyDefinition, StudyRole, range_checks
from trialstack.protocol.definition_forms import NUMERIC_TYPES, Form
from trialstack.protocol.problems import Finding, NoSource, StudyProblem, locate_findings
from trialstack.protocol.symbols import RESERVED_NAMES
from trialstack.protocol.validation_consent import check_consent
from trialstack.protocol.validation_kris import check_kris
from trialstack.protocol.validation_labs import check_labs
from trialstack.protocol.validation_questionnaires import check_questionnaires
from trialstack.protocol.validation_rules import check_expressions
from trialstack.protocol.validation_schedule import check_schedule

Pruned = frozenset[tuple[str, str]]


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


def validate_definition(definition: StudyDefinition, *, pruned: Pruned = frozenset()) -> list[Finding]:
    """Every semantic problem of `definition`; an empty list means it can be published."""
    return [
        *check_identifiers(definition),
        *check_references(definition, pruned),
        *check_items(definition, pruned),
        *check_schedule(definition),
        *check_expressions(definition, pruned),
        *check_consent(definition),
        *check_questionnaires(definition),
        *check_kris(definition),
        *check_labs(definition),
    ]


def definition_problems(definition: StudyDefinition, *, file: str = "<definition>") -> list[StudyProblem]:
    """The problems of a definition built in code or by a loader without positions (pointer only)."""
    return locate_findings(validate_definition(definition), NoSource(file))


def _duplicates(entities: Sequence[_Identified], pointer: str, kind: str) -> Iterator[Finding]:
    first: dict[str, int] = {}
    for index, entity in enumerate(entities):
        if entity.id in first:
            yield Finding(
                f"{pointer}/{index}/id", f"duplicate {kind} id '{entity.id}' (first at {pointer}/{first[entity.id]})"
            )
        first.setdefault(entity.id, index)


def _repeated(values: Sequence[str], pointer: str, what: str) -> Iterator[Finding]:
    for index, value in enumerate(values):
        if value in values[:index]:
            yield Finding(f"{pointer}/{index}", f"{what} '{value}' is listed twice")


def check_identifiers(definition: StudyDefinition) -> Iterator[Finding]:
    """Identifiers are unique within their kind; item ids do not shadow the rule language's own names."""
    yield from _duplicates(definition.sites, "/sites", "site")
    yield from _duplicates(definition.arms, "/arms", "arm")
    yield from _duplicates(definition.epochs, "/epochs", "epoch")
    if definition.supply is not None:
        yield from _duplicates(definition.supply.depots, "/supply/depots", "depot")
    yield from _duplicates(definition.codelists, "/codelists", "codelist")
    for c, codelist in enumerate(definition.codelists):
        yield from _repeated([item.code for item in codelist.items], f"/codelists/{c}/items", "code")
    yield from _duplicates(definition.schedule.visits, "/schedule/visits", "visit")
    for v, visit in enumerate(definition.schedule.visits):
        yield from _repeated(visit.forms, f"/schedule/visits/{v}/forms", "form")
    yield from _duplicates(definition.forms, "/forms", "form")
    for f, form in enumerate(definition.forms):
        yield from _duplicates(form.items, f"/forms/{f}/items", f"item (in form {form.id})")
        for i, item in enumerate(form.items):
            if item.id in RESERVED_NAMES:
                yield Finding(f"/forms/{f}/items/{i}/id", f"'{item.id}' is a reserved name in rule expressions")
    yield from _duplicates(definition.edit_checks, "/edit_checks", "edit check")
    explicit = {check.id for check in definition.edit_checks}
    for form, item, check in range_checks(definition.forms):
        if check.id in explicit:
            f, i = _item_index(definition, form, item.id)
            message = f"the range of {form.id}.{item.id} defines edit check '{check.id}', which is also declared"
            yield Finding(f"/forms/{f}/items/{i}/range", message)
    if definition.eligibility is not None:
        yield from _duplicates(definition.eligibility.criteria, "/eligibility/criteria", "eligibility criterion")
    yield from _duplicates(definition.consent, "/consent", "consent document")
    if definition.randomization is not None:
        factors = definition.randomization.strata.factors
        yield from _duplicates(factors, "/randomization/strata/factors", "stratification factor")
        for s, factor in enumerate(factors):
            codes = [level.code for level in factor.levels]
            yield from _repeated(codes, f"/randomization/strata/factors/{s}/levels", "level code")


def _item_index(definition: StudyDefinition, form: Form, item_id: str) -> tuple[int, int]:
    f = definition.forms.index(form)
    return f, next(i for i, item in enumerate(form.items) if item.id == item_id)


class _Resolver:
    """Answers "is this reference dangling?", forgiving references to entities the loader pruned."""

    def __init__(self, definition: StudyDefinition, pruned: Pruned) -> None:
        self.pruned = pruned
        self.known = {
            "visit": {visit.id for visit in definition.schedule.visits},
            "form": {form.id for form in definition.forms},
            "codelist": {codelist.id for codelist in definition.codelists},
            "epoch": {epoch.id for epoch in definition.epochs},
            "arm": {arm.id for arm in definition.arms},
        }

    def dangling(self, kind: str, entity_id: str) -> bool:
        return entity_id not in self.known[kind] and (kind, entity_id) not in self.pruned

    def findings(self, kind: str, ids: Iterable[tuple[str, str]], noun: str | None = None) -> Iterator[Finding]:
        for pointer, entity_id in ids:
            if self.dangling(kind, entity_id):
                known = ", ".join(sorted(self.known[kind])) or "none declared"
                yield Finding(pointer, f"unknown {noun or kind} '{entity_id}' (known: {known})")


def check_references(definition: StudyDefinition, pruned: Pruned = frozenset()) -> Iterator[Finding]:
    """Every visit, form, epoch, arm and codelist a definition names is declared in it."""
    resolve = _Resolver(definition, pruned)
    schedule = definition.schedule
    yield from resolve.findings("visit", [("/schedule/anchor", schedule.anchor)], "anchor visit")
    for v, visit in enumerate(schedule.visits):
        if visit.epoch is not None:
            yield from resolve.findings("epoch", [(f"/schedule/visits/{v}/epoch", visit.epoch)])
        yield from resolve.findings(
            "form", [(f"/schedule/visits/{v}/forms/{n}", form) for n, form in enumerate(visit.forms)]
        )
        for n, form_id in enumerate(visit.forms):
            if form_id in schedule.log_forms:
                yield Finding(f"/schedule/visits/{v}/forms/{n}", f"'{form_id}' is a log form, collected outside visits")
    yield from resolve.findings(
        "form", [(f"/schedule/log_forms/{n}", form) for n, form in enumerate(schedule.log_forms)]
    )
    visits_pruned = any(kind == "visit" for kind, _ in pruned)
    for f, form in enumerate(definition.forms):
        if visits_pruned:
            break  # the pruned visit may be the one that collects the form
        if form.id not in schedule.log_forms and not schedule.visits_with_form(form.id):
            yield Finding(
                f"/forms/{f}/id", f"form {form.id} is never collected: list it at a visit or in schedule.log_forms"
            )
    for c, check in enumerate(definition.edit_checks):
        yield from _check_target(definition, resolve, f"/edit_checks/{c}", check.form, check.item, check.visits)
    if definition.eligibility is not None:
        yield from resolve.findings("form", [("/eligibility/form", definition.eligibility.form)])
    yield from resolve.findings(
        "visit", [(f"/consent/{n}/required_before", doc.required_before) for n, doc in enumerate(definition.consent)]
    )
    yield from _check_randomization(definition, resolve)
    yield from _check_supply(definition, resolve)
    yield from _check_blinding(definition)


def _check_target(
    definition: StudyDefinition, resolve: _Resolver, pointer: str, form_id: str, item_id: str, visits: Sequence[str]
) -> Iterator[Finding]:
    yield from resolve.findings("form", [(f"{pointer}/form", form_id)])
    form = definition.form(form_id)
    if form is not None and form.item(item_id) is None and ("item", f"{form_id}.{item_id}") not in resolve.pruned:
        yield Finding(f"{pointer}/item", f"form {form_id} has no item '{item_id}'")
    for n, visit_id in enumerate(visits):
        visit = definition.visit(visit_id)
        if visit is None:
            yield from resolve.findings("visit", [(f"{pointer}/visits/{n}", visit_id)])
        elif form is not None and form_id not in visit.forms:
            yield Finding(f"{pointer}/visits/{n}", f"visit {visit_id} does not collect form {form_id}")


def _check_randomization(definition: StudyDefinition, resolve: _Resolver) -> Iterator[Finding]:
    randomization = definition.randomization
    if randomization is None:
        return
    yield from resolve.findings("visit", [("/randomization/visit", randomization.visit)])
    yield from resolve.findings("arm", [(f"/randomization/ratio/{arm}", arm) for arm in randomization.ratio])
    for arm in definition.arms:
        if arm.id not in randomization.ratio:
            yield Finding("/randomization/ratio", f"arm {arm.id} has no allocation ratio")
    total = sum(randomization.ratio.values())
    for n, size in enumerate(randomization.block_sizes):
        if size % total:
            yield Finding(
                f"/randomization/block_sizes/{n}", f"block size {size} is not a multiple of the ratio total {total}"
            )
    if randomization.strata.by_site and not definition.sites:
        yield Finding("/randomization/strata/by_site", "stratified by site, but no sites are declared")
    if randomization.minimization is not None:
        factors = set(randomization.factor_ids())
        for factor in randomization.minimization.weights:
            if factor not in factors:
                known = ", ".join(sorted(factors)) or "none: declare strata factors or by_site"
                yield Finding(
                    f"/randomization/minimization/weights/{factor}", f"unknown factor '{factor}' (known: {known})"
                )
        if not factors:
            yield Finding("/randomization/strata", "minimization needs at least one factor (by_site or factors)")


def _check_supply(definition: StudyDefinition, resolve: _Resolver) -> Iterator[Finding]:
    supply = definition.supply
    if supply is None:
        return
    if definition.randomization is None:
        yield Finding("/supply", "drug supply dispenses the subject's allocated treatment: declare randomization")
    order = [visit.id for visit in definition.schedule.visits]
    first = definition.randomization.visit if definition.randomization is not None else None
    for n, dispensing in enumerate(supply.dispensing):
        yield from resolve.findings("visit", [(f"/supply/dispensing/{n}/visit", dispensing.visit)])
        if first in order and dispensing.visit in order and order.index(dispensing.visit) < order.index(first):
            yield Finding(
                f"/supply/dispensing/{n}/visit",
                f"visit {dispensing.visit} comes before randomization at {first}: the treatment is not known yet",
            )
    yield from _repeated([d.visit for d in supply.dispensing], "/supply/dispensing", "dispensing visit")
    sites = {site.id for site in definition.sites}
    for n, levels in enumerate(supply.resupply):
        for s, site in enumerate(levels.sites):
            if site not in sites:
                yield Finding(f"/supply/resupply/{n}/sites/{s}", f"unknown site '{site}'")


def _check_blinding(definition: StudyDefinition) -> Iterator[Finding]:
    blinding = definition.blinding
    if blinding is None:
        return
    kept_blind = {
        BlindingLevel.DOUBLE_BLIND: {StudyRole.INVESTIGATOR, StudyRole.PARTICIPANT},
        BlindingLevel.SINGLE_BLIND: {StudyRole.PARTICIPANT},
        BlindingLevel.OPEN_LABEL: set(),
    }[blinding.level]
    for n, role in enumerate(blinding.unblinded_roles):
        if blinding.level is BlindingLevel.OPEN_LABEL:
            yield Finding(f"/blinding/unblinded_roles/{n}", "an open-label study has no blinded roles to unblind")
        elif role in kept_blind:
            yield Finding(
                f"/blinding/unblinded_roles/{n}", f"a {blinding.level.value} study keeps the {role.value} blinded"
            )


def check_items(definition: StudyDefinition, pruned: Pruned = frozenset()) -> Iterator[Finding]:
    """Item attributes fit the item's data type (a unit on a date, a codelist on a number, ...)."""
    resolve = _Resolver(definition, pruned)
    for f, form in enumerate(definition.forms):
        for i, item in enumerate(form.items):
            at = f"/forms/{f}/items/{i}"
            numeric = item.type in NUMERIC_TYPES
            if item.type is ItemType.CHOICE and item.codelist is None:
                yield Finding(at, f"choice item {item.id} needs a codelist")
            if item.codelist is not None and item.type is not ItemType.CHOICE:
                yield Finding(f"{at}/codelist", f"only choice items take a codelist ({item.id} is {item.type.value})")
            elif item.codelist is not None:
                yield from resolve.findings("codelist", [(f"{at}/codelist", item.codelist)])
            for key in ("unit", "range", "max_digits"):
                if getattr(item, key) is not None and not numeric:
                    yield Finding(
                        f"{at}/{key}", f"only integer and decimal items take a {key} ({item.id} is {item.type.value})"
                    )
            if item.fraction_digits is not None and item.type is not ItemType.DECIMAL:
                yield Finding(
                    f"{at}/fraction_digits", f"only decimal items take fraction_digits ({item.id} is {item.type.value})"
                )
            if item.max_length is not None and item.type is not ItemType.TEXT:
                yield Finding(f"{at}/max_length", f"only text items take a max_length ({item.id} is {item.type.value})")
            limits = item.range
            if limits is not None and limits.min is not None and limits.max is not None and limits.min > limits.max:
                yield Finding(f"{at}/range", f"range minimum {limits.min} is above its maximum {limits.max}")
            if item.derived is not None and item.required:
                yield Finding(
                    f"{at}/required", f"derived item {item.id} is computed, never entered: it cannot be required"
                )
            if item.derived is not None and item.personal:
                yield Finding(
                    f"{at}/personal",
                    f"derived item {item.id} is computed from other items: mark the items it reads personal instead",
                )
