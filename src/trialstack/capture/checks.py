"""The protocol's logic compiled for capture: edit checks, derivations, visibility, eligibility, windows. Pure.

A `StudyRules` is built once per StudyVersion (it is immutable, so it is cached by its content hash).
`CasebookEnv` resolves rule names against a casebook lazily: only the names a rule reads are looked up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from trialstack.capture.model import Casebook, FormState
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.protocol.definition import CheckAction, EditCheck, EligibilityCriterion, Item, Visit
from trialstack.protocol.rules import CompiledRule, compile_rule
from trialstack.protocol.symbols import VISIT_DATE, rule_value, study_symbols
from trialstack.protocol.version import StudyVersion

WINDOW_ITEM = VISIT_DATE


@dataclass(frozen=True)
class CompiledCheck:
    check: EditCheck
    rule: CompiledRule
    bare_reads: frozenset[str]
    qualified_reads: frozenset[str]


@dataclass(frozen=True)
class CheckResult:
    """One check on one form instance (or one visit, for window checks): True, False or unknown (None)."""

    check_id: str
    form: str
    item: str
    result: bool | None
    message: str
    action: CheckAction


class StudyRules:
    def __init__(self, version: StudyVersion) -> None:
        definition = version.definition
        self.version_hash = version.hash
        self.definition = definition
        symbols = study_symbols(definition)
        self.checks: dict[str, list[CompiledCheck]] = {}
        for check in definition.all_edit_checks():
            rule = compile_rule(check.expression, symbols.for_form(check.form))
            bare = frozenset(name for name in rule.reads if "." not in name)
            self.checks.setdefault(check.form, []).append(
                CompiledCheck(check, rule, bare, frozenset(rule.reads - bare))
            )
        self.derived: dict[str, list[tuple[Item, CompiledRule]]] = {}
        self.visible: dict[tuple[str, str], CompiledRule] = {}
        self.personal = frozenset((f.id, i.id) for f in definition.forms for i in f.items if i.personal)
        for form in definition.forms:
            for item in form.items:
                local = symbols.for_form(form.id)
                if item.derived is not None:
                    self.derived.setdefault(form.id, []).append((item, compile_rule(item.derived, local, None)))
                if item.show_if is not None:
                    self.visible[(form.id, item.id)] = compile_rule(item.show_if, local)
        self.eligibility: list[tuple[EligibilityCriterion, CompiledRule]] = []
        if definition.eligibility is not None:
            local = symbols.for_form(definition.eligibility.form)
            self.eligibility = [(c, compile_rule(c.expression, local)) for c in definition.eligibility.criteria]

    def item(self, form_id: str, item_id: str) -> Item | None:
        form = self.definition.form(form_id)
        return form.item(item_id) if form is not None else None

    def visit(self, visit_id: str) -> Visit | None:
        return self.definition.visit(visit_id)


_COMPILED: dict[str, StudyRules] = {}
_COMPILED_LOCK = threading.Lock()


def rules_for(version: StudyVersion) -> StudyRules:
    """The compiled logic of a StudyVersion (compiled once per content hash: versions never change)."""
    with _COMPILED_LOCK:
        rules = _COMPILED.get(version.hash)
        if rules is None:
            rules = _COMPILED[version.hash] = StudyRules(version)
        return rules


class CasebookEnv(Mapping[str, object]):
    """The names of the rule language, resolved in the casebook from one form instance's point of view."""

    def __init__(self, rules: StudyRules, casebook: Casebook, form: FormKey | None, country: str = "") -> None:
        self._rules = rules
        self._casebook = casebook
        self._form = form
        self._country = country
        self._cache: dict[str, object] = {}

    def __getitem__(self, name: str) -> object:
        if name not in self._cache:
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def get(self, name: str, default: object = None) -> object:
        value = self[name]
        return default if value is None else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    def _resolve(self, name: str) -> object:
        parts = name.split(".")
        casebook = self._casebook
        if name == "SITE":
            return casebook.site_id or None
        if name == "COUNTRY":
            return self._country or None
        if name == VISIT_DATE:
            visit = self._form.visit if self._form is not None else None
            return _as_date(casebook.visit_dates.get(visit)) if visit is not None else None
        if len(parts) == 1 and self._form is not None:
            return self._value(self._form, name)
        if len(parts) == 2 and parts[1] == VISIT_DATE:
            return _as_date(casebook.visit_dates.get(VisitKey(parts[0])))
        if len(parts) == 2:
            key = self._instance_of(parts[0])
            return self._value(key, parts[1]) if key is not None else None
        if len(parts) == 3:
            return self._value(FormKey(parts[1], VisitKey(parts[0])), parts[2])
        return None

    def _instance_of(self, form_id: str) -> FormKey | None:
        """FORM.ITEM: this visit's instance of FORM, else its only instance at a non-repeating visit."""
        own = self._form
        if own is not None and own.form_id == form_id:
            return own
        if own is not None and own.visit is not None:
            here = FormKey(form_id, own.visit)
            if here in self._casebook.forms:
                return here
        visits = self._rules.definition.schedule.visits_with_form(form_id)
        scheduled = [v for v in visits if not v.repeating]
        if len(scheduled) == 1:
            return FormKey(form_id, VisitKey(scheduled[0].id))
        return None

    def _value(self, key: FormKey, item_id: str) -> object:
        state = self._casebook.forms.get(key)
        if state is None:
            return None
        entry = state.items.get(item_id)
        item = self._rules.item(key.form_id, item_id)
        if entry is None or item is None or entry.value is None:
            return None
        return rule_value(item.type, entry.value)


def _as_date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text is not None else None


def _applies(check: EditCheck, key: FormKey) -> bool:
    return not check.visits or (key.visit is not None and key.visit.visit_id in check.visits)


def _affected(compiled: CompiledCheck, key: FormKey, changed_here: set[str], changed_names: set[str]) -> bool:
    return bool(compiled.bare_reads & changed_here) or bool(compiled.qualified_reads & changed_names)


def qualified_names(key: FormKey, items: Iterable[str]) -> set[str]:
    """The names under which other forms' rules can read these items of `key`."""
    names: set[str] = set()
    for item in items:
        names.add(f"{key.form_id}.{item}")
        if key.visit is not None and not key.visit.repeat:
            names.add(f"{key.visit.visit_id}.{key.form_id}.{item}")
    return names


def evaluate_checks(
    rules: StudyRules,
    casebook: Casebook,
    changed: Mapping[FormKey, set[str]],
    changed_visits: set[VisitKey],
    country: str = "",
) -> list[CheckResult]:
    """Every check that reads something that changed, on every form instance it applies to.

    `changed` maps form instances to the item ids saved in them; `changed_visits` are visits whose date changed.
    """
    changed_names: set[str] = set()
    for key, items in changed.items():
        changed_names |= qualified_names(key, items)
    for visit in changed_visits:
        if not visit.repeat:
            changed_names.add(f"{visit.visit_id}.{VISIT_DATE}")
    results: list[CheckResult] = []
    for key, form_state in casebook.forms.items():
        here = set(changed.get(key, ()))
        if key.visit is not None and key.visit in changed_visits:
            here.add(VISIT_DATE)
        for compiled in rules.checks.get(key.form_id, ()):
            if not _applies(compiled.check, key):
                continue
            if key in changed or _affected(compiled, key, here, changed_names):
                results.append(_run(rules, casebook, key, form_state, compiled, country))
    return results


def _run(
    rules: StudyRules, casebook: Casebook, key: FormKey, form: FormState, compiled: CompiledCheck, country: str
) -> CheckResult:
    value = compiled.rule(CasebookEnv(rules, casebook, key, country))
    result = value if isinstance(value, bool) else None
    check = compiled.check
    return CheckResult(check.id, str(key), check.item, result, check.message, check.action)


def window_check(rules: StudyRules, casebook: Casebook, visit: VisitKey) -> CheckResult | None:
    """Whether a visit's date is inside its window (None result while the anchor date is unknown)."""
    definition = rules.definition
    declared = definition.visit(visit.visit_id)
    visit_date = casebook.visit_dates.get(visit)
    if declared is None or declared.day is None or visit_date is None:
        return None
    anchor = casebook.visit_dates.get(VisitKey(definition.schedule.anchor))
    inside = declared.is_in_window(date.fromisoformat(anchor), date.fromisoformat(visit_date)) if anchor else None
    window = declared.window_days()
    bounds = f"study day {window[0]} to {window[1]}" if window else "its window"
    message = f"{declared.name} on {visit_date} is outside its window ({bounds})."
    return CheckResult(f"{visit.visit_id}-WINDOW", str(visit), WINDOW_ITEM, inside, message, declared.out_of_window)


def derive(rules: StudyRules, casebook: Casebook, key: FormKey) -> dict[str, str | None]:
    """The derived items of a form instance recomputed: item id -> canonical text (None: cannot compute)."""
    derived: dict[str, str | None] = {}
    for item, rule in rules.derived.get(key.form_id, ()):
        value = rule(CasebookEnv(rules, casebook, key))
        derived[item.id] = None if value is None else _canonical(item, value)
    return derived


def _canonical(item: Item, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if item.type.value == "integer":
        return str(int(value))  # type: ignore[call-overload]
    if item.fraction_digits is not None and not isinstance(value, str):
        return format(Decimal(str(value)).quantize(Decimal(1).scaleb(-item.fraction_digits), ROUND_HALF_EVEN), "f")
    return str(value)


def is_visible(rules: StudyRules, casebook: Casebook, key: FormKey, item_id: str) -> bool:
    """An item is shown unless its `show_if` is false (unknown shows it: the site may need to answer)."""
    rule = rules.visible.get((key.form_id, item_id))
    return rule is None or rule(CasebookEnv(rules, casebook, key)) is not False


def eligibility(rules: StudyRules, casebook: Casebook, key: FormKey | None) -> dict[str, bool | None]:
    """Each eligibility criterion on the subject's eligibility form: True (eligible), False, or unknown."""
    results: dict[str, bool | None] = {}
    for criterion, rule in rules.eligibility:
        value = rule(CasebookEnv(rules, casebook, key)) if key is not None else None
        results[criterion.id] = value if isinstance(value, bool) else None
    return results
