"""ODM logic -> rule-language expressions: conditions become show_if, methods derivations, range checks
edit checks. Each translation is compiled against the study's symbols before it is kept; whatever does
not translate or compile is listed in the report with the reason, never dropped silently.

A CollectionExceptionCondition is true when the item is *not* collected, so show_if is its negation;
conditions inherited from enclosing item groups are combined with `and`. An item whose condition cannot
be translated keeps no show_if and is no longer required, so a site is never forced to fill in a field
that the protocol says to skip.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialstack.protocol.definition import CheckAction, EditCheck, Item, ItemType, StudyDefinition
from trialstack.protocol.rules import RuleCompileError, RuleType, compile_rule
from trialstack.protocol.symbols import StudySymbols, rule_type, study_symbols
from trialstack.standards import aliases
from trialstack.standards.identifiers import IdentifierMap, to_rule_id
from trialstack.standards.odm_expressions import Target, Untranslatable, negate, translate_xpath, typed_literal
from trialstack.standards.odm_forms import Entry, FormMapper, FormPlan
from trialstack.standards.odm_meta import Expression, LogicDef, OdmMeta, RangeCheck
from trialstack.standards.odm_xml import Where
from trialstack.standards.report import MappingReport

_COMPARATORS = {"LT": "<", "LE": "<=", "GT": ">", "GE": ">=", "EQ": "==", "NE": "!="}
_WORDS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least", "==": "equal to", "!=": "other than"}


@dataclass(frozen=True)
class CheckSource:
    """Where each imported edit check came from, for located messages."""

    check_id: str
    where: Where


class RuleMapper:
    def __init__(
        self, meta: OdmMeta, report: MappingReport, forms: FormMapper, visits: IdentifierMap, draft: StudyDefinition
    ) -> None:
        self.meta = meta
        self.visits = visits
        self.report = report
        self.forms = forms
        self.draft = draft
        self.symbols: StudySymbols = study_symbols(draft)
        self.check_sources: list[CheckSource] = []

    def item(self, plan: FormPlan, entry: Entry, item: Item) -> Item:
        """The item with its show_if and derivation, when they translate."""
        update: dict[str, object] = {}
        if entry.conditions:
            show_if = self._show_if(plan, entry, item)
            if show_if is not None:
                update["show_if"] = show_if
            elif item.required:
                update["required"] = False
        if entry.ref.method is not None:
            derived = self._derived(plan, entry, item)
            if derived is not None:
                update["derived"] = derived
                if item.required:
                    update["required"] = False
                    self.report.note(entry.ref.where.path, f"{item.id} is computed by {entry.ref.method}: not required")
        return item.model_copy(update=update) if update else item

    def _show_if(self, plan: FormPlan, entry: Entry, item: Item) -> str | None:
        parts = []
        for oid in entry.conditions:
            condition = self.meta.conditions.get(oid)
            text = self._translate(condition, plan, RuleType.BOOLEAN) if condition is not None else None
            if text is None:
                self.report.skip(
                    entry.ref.where.path,
                    f"{item.id} has no show_if and is not required: condition {oid} does not translate",
                )
                return None
            parts.append(negate(text))
        show_if = parts[0] if len(parts) == 1 else " and ".join(f"({part})" for part in parts)
        self.report.map(entry.ref.where.path, f"{plan.id}.{item.id} show_if {show_if}", "CollectionExceptionCondition")
        return show_if

    def _derived(self, plan: FormPlan, entry: Entry, item: Item) -> str | None:
        method = self.meta.methods[entry.ref.method or ""]
        text = self._translate(method, plan, rule_type(item), xpath=False)
        if text is None:
            self.report.skip(
                entry.ref.where.path, f"{item.id} is entered, not derived: method {method.oid} does not translate"
            )
        return text

    def _translate(self, logic: LogicDef, plan: FormPlan, expect: RuleType, *, xpath: bool = True) -> str | None:
        """The first of the def's expressions that translates and compiles, or None (reasons reported)."""
        reasons = []
        for expression in logic.expressions:
            try:
                text = self._text(expression, plan, xpath)
                compile_rule(text, self.symbols.for_form(plan.id), expect=expect)
                return text
            except Untranslatable as error:
                reasons.append(f"{expression.context or 'no context'}: {error}")
            except RuleCompileError as error:
                reasons.append(f"{expression.context}: {error.errors[0].message if error.errors else error}")
        self.report.skip(logic.where.path, "; ".join(reasons) or "no FormalExpression")
        return None

    def _text(self, expression: Expression, plan: FormPlan, xpath: bool) -> str:
        if expression.text is None:
            raise Untranslatable("an external code library cannot be translated")
        if expression.context.lower() == aliases.RULE_CONTEXT.lower():
            return expression.text
        if xpath and expression.context.lower() == "xpath":
            return translate_xpath(expression.text, lambda target: self._resolve(target, plan))
        raise Untranslatable(f"the language {expression.context!r} is not translated")

    def _resolve(self, target: Target, owner: FormPlan) -> tuple[str, ItemType]:
        """The rule-language name of an item an XPath selects, seen from a form of `owner`."""
        candidates = [plan for plan in self.forms.plans if target.item in plan.item_ids]
        if target.form is not None:
            candidates = [plan for plan in candidates if plan.source == target.form]
        elif owner in candidates:
            candidates = [owner]
        elif any(plan.source == owner.source for plan in candidates):
            candidates = [plan for plan in candidates if plan.source == owner.source]
        if len(candidates) != 1:
            found = "no imported form has" if not candidates else "several forms have"
            raise Untranslatable(f"{found} item {target.item}")
        plan = candidates[0]
        item_id = plan.item_ids[target.item]
        form = self.draft.form(plan.id)
        item = form.item(item_id) if form is not None else None
        name = item_id if plan is owner and target.event is None else f"{plan.id}.{item_id}"
        if target.event is not None:
            visit = self.visits.get(target.event)
            if visit is None:
                raise Untranslatable(f"event {target.event} is not an imported visit")
            name = f"{visit}.{plan.id}.{item_id}"
        return name, item.type if item is not None else ItemType.TEXT

    def checks(self, plan: FormPlan, entry: Entry, item: Item) -> list[EditCheck]:
        """One edit check per RangeCheck of the item's ItemDef that translates and compiles."""
        found: list[EditCheck] = []
        source = self.meta.items[entry.item_oid]
        unit = self.meta.units.get(source.units[0]) if source.units else None
        for check in source.checks:
            check_id = to_rule_id(plan.id, item.id, f"RC{len(found) + 1}")
            if check.unit is not None and unit is not None and self.meta.units.get(check.unit) != unit:
                self.report.skip(
                    check.where.path,
                    f"range check in {self.meta.units.get(check.unit)}, values are collected in {unit}",
                )
                continue
            try:
                expression = self._check_expression(check, item)
                compile_rule(expression, self.symbols.for_form(plan.id), expect=RuleType.BOOLEAN)
            except (Untranslatable, RuleCompileError) as error:
                reason = error.errors[0].message if isinstance(error, RuleCompileError) and error.errors else str(error)
                self.report.skip(check.where.path, f"range check on {plan.id}.{item.id} does not translate: {reason}")
                continue
            message = check.message or f"{item.label} is expected to be {_describe(check)}; please verify."
            action = CheckAction.QUERY if check.soft else CheckAction.BLOCK
            found.append(
                EditCheck(
                    id=check_id, form=plan.id, item=item.id, expression=expression, message=message, action=action
                )
            )
            self.check_sources.append(CheckSource(check_id, check.where))
            self.report.map(check.where.path, f"edit check {check_id}: {expression}", "RangeCheck")
        return found

    def _check_expression(self, check: RangeCheck, item: Item) -> str:
        if check.expressions:
            if check.comparator is not None:
                raise Untranslatable("a FormalExpression with a Comparator has no agreed meaning")
            texts = [e.text for e in check.expressions if e.context.lower() == aliases.RULE_CONTEXT.lower() and e.text]
            if not texts:
                contexts = ", ".join(sorted({e.context for e in check.expressions}))
                raise Untranslatable(f"FormalExpression in {contexts} is not translated")
            return texts[0]
        comparator = check.comparator or "EQ"
        values = [typed_literal(item.type, value, _COMPARATORS.get(comparator, "==")) for value in check.values]
        if comparator in ("IN", "NOTIN"):
            if item.type in (ItemType.DATE, ItemType.DATETIME):
                raise Untranslatable("IN on dates is not translated")
            return f"{item.id} {'in' if comparator == 'IN' else 'not in'} ({', '.join(values)})"
        if len(values) != 1:
            raise Untranslatable(f"{comparator} takes one CheckValue, got {len(values)}")
        return f"{item.id} {_COMPARATORS[comparator]} {values[0]}"


def _describe(check: RangeCheck) -> str:
    if check.comparator in ("IN", "NOTIN"):
        return ("one of " if check.comparator == "IN" else "none of ") + ", ".join(check.values)
    return f"{_WORDS.get(_COMPARATORS.get(check.comparator or 'EQ', '=='), 'equal to')} {', '.join(check.values)}"
