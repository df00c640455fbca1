"""Every expression of a study compiles against the study's symbols, and derivations do not loop.

A study that names an unknown item, or compares a date with a number, is rejected when it is loaded,
not when a site saves data (DESIGN.md §3). Errors keep their position inside the expression, which the
loader turns into a line and column in the YAML file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from trialstack.protocol.definition import StudyDefinition, range_checks
from trialstack.protocol.problems import Finding
from trialstack.protocol.rules import RuleCompileError, RuleType, compile_rule, names_in
from trialstack.protocol.symbols import StudySymbols, refer, rule_type, study_symbols

Pruned = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class ExpressionSite:
    """One expression of the definition: where it is, what it may name, and the type it must have."""

    pointer: str
    source: str
    form: str | None
    expect: RuleType
    at_visit: bool | None = None


def expression_sites(definition: StudyDefinition) -> Iterator[ExpressionSite]:
    """Every expression in the definition, with the context it is evaluated in."""
    for f, form in enumerate(definition.forms):
        for i, item in enumerate(form.items):
            at = f"/forms/{f}/items/{i}"
            if item.show_if is not None:
                yield ExpressionSite(f"{at}/show_if", item.show_if, form.id, RuleType.BOOLEAN)
            if item.derived is not None:
                yield ExpressionSite(f"{at}/derived", item.derived, form.id, rule_type(item))
    for c, check in enumerate(definition.edit_checks):
        yield ExpressionSite(f"/edit_checks/{c}/expression", check.expression, check.form, RuleType.BOOLEAN)
    if definition.eligibility is not None:
        form_id = definition.eligibility.form
        for n, criterion in enumerate(definition.eligibility.criteria):
            yield ExpressionSite(
                f"/eligibility/criteria/{n}/expression", criterion.expression, form_id, RuleType.BOOLEAN
            )
    if definition.randomization is not None:
        for s, factor in enumerate(definition.randomization.strata.factors):
            for n, level in enumerate(factor.levels):
                pointer = f"/randomization/strata/factors/{s}/levels/{n}/when"
                yield ExpressionSite(pointer, level.when, None, RuleType.BOOLEAN, at_visit=True)


def check_expressions(definition: StudyDefinition, pruned: Pruned = frozenset()) -> Iterator[Finding]:
    """Compile every expression, and the checks derived from item ranges; report each error in place."""
    symbols = study_symbols(definition)
    known_forms = {form.id for form in definition.forms}
    for site in expression_sites(definition):
        if site.form is not None and site.form not in known_forms:
            continue  # the owning form is unknown: reported as a dangling reference
        if _names_pruned(site, pruned):
            continue
        yield from _compile(site, symbols)
    for form, item, check in range_checks(definition.forms):
        f = definition.forms.index(form)
        i = form.items.index(item)
        site = ExpressionSite(f"/forms/{f}/items/{i}/range", check.expression, form.id, RuleType.BOOLEAN)
        for finding in _compile(site, symbols):
            yield Finding(site.pointer, f"the range check {check.id} does not compile: {finding.message}")
    yield from check_derivation_cycles(definition)


def _compile(site: ExpressionSite, symbols: StudySymbols) -> Iterator[Finding]:
    names: Mapping[str, RuleType] = symbols.for_form(site.form, at_visit=site.at_visit)
    try:
        compile_rule(site.source, names, expect=site.expect)
    except RuleCompileError as error:
        for rule_error in error.errors:
            position = (rule_error.line, rule_error.column) if rule_error.line > 0 else None
            yield Finding(site.pointer, rule_error.message, expression_at=position)


def _names_in(source: str) -> frozenset[str]:
    try:
        return names_in(source)
    except RuleCompileError:
        return frozenset()  # compiling reports the syntax error


def _names_pruned(site: ExpressionSite, pruned: Pruned) -> bool:
    """Whether the expression names an entity the loader left out (it would only echo that problem)."""
    if not pruned:
        return False
    for name in _names_in(site.source):
        ref = refer(name, site.form)
        if ("visit", ref.visit or "") in pruned or ("form", ref.form or "") in pruned:
            return True
        if ref.item is not None and ("item", f"{ref.form}.{ref.item}") in pruned:
            return True
    return False


def check_derivation_cycles(definition: StudyDefinition) -> Iterator[Finding]:
    """Each cycle among derived items once, at the first derived item of the cycle in the file."""
    position: dict[str, str] = {}
    depends: dict[str, list[str]] = {}
    for f, form in enumerate(definition.forms):
        for i, item in enumerate(form.items):
            if item.derived is None:
                continue
            node = f"{form.id}.{item.id}"
            position[node] = f"/forms/{f}/items/{i}/derived"
            refs = (refer(name, form.id) for name in sorted(_names_in(item.derived)))
            depends[node] = [f"{ref.form}.{ref.item}" for ref in refs if ref.item is not None]
    seen_cycles: set[frozenset[str]] = set()
    for start in position:
        for cycle in _cycles_from(start, depends):
            if frozenset(cycle) not in seen_cycles:
                seen_cycles.add(frozenset(cycle))
                first = min(cycle, key=list(position).index)
                turn = cycle.index(first)
                ordered = cycle[turn:] + cycle[:turn] + [first]
                yield Finding(position[first], f"derivation cycle: {' -> '.join(ordered)}")


def _cycles_from(start: str, depends: Mapping[str, list[str]]) -> Iterator[list[str]]:
    """Paths from `start` that come back to it (depth-first, each node once per path)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for successor in depends.get(node, []):
            if successor == start:
                yield path
            elif successor not in path:
                stack.append((successor, [*path, successor]))
