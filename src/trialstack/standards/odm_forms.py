"""ODM forms, item groups, items and code lists -> Forms, Items and Codelists.

Item groups are flattened into their form in order. A repeating group inside a non-repeating form
becomes a repeating form of its own, collected with its parent (the usual "any adverse events? + one
row per event" layout); a form that holds only repeating rows becomes repeating itself. ODM data types
narrow to ours; partial dates and other types we cannot check are kept as text, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trialstack.protocol.definition import Codelist, CodelistItem, Item, ItemType
from trialstack.protocol.symbols import RESERVED_NAMES
from trialstack.standards import aliases
from trialstack.standards.identifiers import IdentifierMap
from trialstack.standards.odm_meta import ItemDef, OdmMeta, Ref
from trialstack.standards.odm_xml import Where
from trialstack.standards.report import MappingReport

DATA_TYPES = {
    "integer": ItemType.INTEGER,
    "float": ItemType.DECIMAL,
    "double": ItemType.DECIMAL,
    "decimal": ItemType.DECIMAL,
    "text": ItemType.TEXT,
    "string": ItemType.TEXT,
    "date": ItemType.DATE,
    "datetime": ItemType.DATETIME,
    "time": ItemType.TIME,
    "boolean": ItemType.BOOLEAN,
}


@dataclass(frozen=True)
class Entry:
    """One item of a planned form: its ItemRef and the collection-exception conditions it inherits."""

    item_oid: str
    ref: Ref
    conditions: tuple[str, ...]


@dataclass
class FormPlan:
    """A TrialStack form to build from one ODM form (or from a repeating group split off it)."""

    id: str
    name: str
    repeating: bool
    source: str  # the ODM form OID
    where: Where
    entries: list[Entry] = field(default_factory=list)
    item_ids: dict[str, str] = field(default_factory=dict)  # item OID -> item id in this form


class FormMapper:
    """Plans forms from the ODM forms, then builds their items and the code lists they use."""

    def __init__(self, meta: OdmMeta, report: MappingReport) -> None:
        self.meta = meta
        self.report = report
        self.form_ids = IdentifierMap(("F", "FO", "FORM", "IG"), fallback="F")
        self.group_ids = IdentifierMap(("IG", "G"), fallback="G")
        self.item_ids = IdentifierMap(("I", "IT", "ITEM"), reserved=RESERVED_NAMES, fallback="I")
        self.codelist_ids = IdentifierMap(("CL",), fallback="CL")
        self.plans: list[FormPlan] = []
        self.by_source: dict[str, list[FormPlan]] = {}

    def odm_forms(self) -> dict[str, tuple[str, bool, tuple[Ref, ...], Where, dict[str, str]]]:
        """OID -> (name, repeating, children, where, aliases) of every form: FormDefs, or Form-type groups in 2.0."""
        if self.meta.version == "1.3.2":
            return {oid: (f.name, f.repeating, f.children, f.where, f.aliases) for oid, f in self.meta.forms.items()}
        return {
            oid: (g.name, g.repeating, g.children, g.where, g.aliases)
            for oid, g in self.meta.groups.items()
            if g.kind == "Form"
        }

    def plan(
        self, oid: str, name: str, repeating: bool, children: tuple[Ref, ...], where: Where, alias: dict[str, str]
    ) -> list[FormPlan]:
        """Flatten one ODM form into one or more planned forms (see the module docstring)."""
        main = FormPlan(self.form_ids.add(oid, alias.get(aliases.ID)), name, repeating, oid, where)
        rows: list[tuple[str, str, list[Entry]]] = []
        self._walk(children, (), main.entries, rows, inside_rows=repeating, ancestors=(oid,))
        if repeating:
            for group_oid, _, entries in rows:
                main.entries += entries
                self.report.note(
                    where.path, f"repeating group {group_oid} is collected once per repeat of the repeating form"
                )
            plans = [main]
        elif not main.entries and len(rows) == 1:
            main.repeating, main.entries = True, rows[0][2]
            self.report.note(where.path, f"holds only the repeating group {rows[0][0]}: imported as a repeating form")
            plans = [main]
        else:
            plans = [main] if main.entries else []
            for group_oid, group_name, entries in rows:
                key = f"{oid}/{group_oid}"
                plan = FormPlan(
                    self.form_ids.add(key, f"{main.id}_{self.group_ids.add(group_oid)}"),
                    f"{name}: {group_name}",
                    True,
                    oid,
                    where,
                    entries,
                )
                plans.append(plan)
                self.report.note(
                    where.path,
                    f"repeating group {group_oid} became its own repeating form {plan.id}, collected with {main.id}",
                )
        for plan in plans:
            self._assign_item_ids(plan)
        self.plans += plans
        self.by_source[oid] = plans
        return plans

    def _walk(
        self,
        children: tuple[Ref, ...],
        conditions: tuple[str, ...],
        entries: list[Entry],
        rows: list[tuple[str, str, list[Entry]]],
        *,
        inside_rows: bool,
        ancestors: tuple[str, ...],
    ) -> None:
        for ref in children:
            inherited = (*conditions, ref.condition) if ref.condition else conditions
            if ref.kind == "item":
                entries.append(Entry(ref.oid, ref, inherited))
                continue
            group = self.meta.groups[ref.oid]
            if ref.oid in ancestors:
                self.report.skip(
                    ref.where.path, f"item group {ref.oid} contains itself; the nested reference is ignored"
                )
                continue
            if ref.method:
                self.report.skip(ref.where.path, f"method {ref.method} on an item group reference is not mapped")
            if group.repeat == "Static":
                self.report.note(
                    ref.where.path, f"{group.oid} repeats once per code (Static): rows are added one by one"
                )
            if group.repeating and not inside_rows:
                own: list[Entry] = []
                rows.append((group.oid, group.name, own))
                self._walk(group.children, inherited, own, rows, inside_rows=True, ancestors=(*ancestors, ref.oid))
            else:
                if group.repeating:
                    self.report.note(
                        ref.where.path, f"repeating group {group.oid} nested in repeating rows is flattened into them"
                    )
                self._walk(
                    group.children, inherited, entries, rows, inside_rows=inside_rows, ancestors=(*ancestors, ref.oid)
                )

    def _assign_item_ids(self, plan: FormPlan) -> None:
        kept = []
        for entry in plan.entries:
            if entry.item_oid in plan.item_ids:
                self.report.skip(
                    entry.ref.where.path, f"item {entry.item_oid} is already in form {plan.id}; the repeat is ignored"
                )
                continue
            item = self.meta.items[entry.item_oid]
            item_id = self.item_ids.add(entry.item_oid, item.aliases.get(aliases.ID))
            plan.item_ids[entry.item_oid] = item_id
            kept.append(entry)
        plan.entries = kept

    def item(self, plan: FormPlan, entry: Entry) -> Item:
        """The Item for one entry of a planned form (expressions are added later, once names are known)."""
        source = self.meta.items[entry.item_oid]
        kind = self._type(source)
        codelist = (
            self.codelist_ids.add(source.codelist, self.meta.codelists[source.codelist].aliases.get(aliases.ID))
            if kind is ItemType.CHOICE and source.codelist
            else None
        )
        numeric = kind in (ItemType.INTEGER, ItemType.DECIMAL)
        return Item(
            id=plan.item_ids[entry.item_oid],
            label=source.question or source.name,
            type=kind,
            codelist=codelist,
            unit=self._unit(source) if numeric else None,
            required=entry.ref.mandatory,
            sdv=source.aliases.get(aliases.SDV) == "Yes",
            max_length=self._limit(source, source.length, 4000, "Length") if kind is ItemType.TEXT else None,
            max_digits=self._limit(source, source.length, 30, "Length") if numeric else None,
            fraction_digits=self._limit(source, source.significant_digits, 15, "SignificantDigits")
            if kind is ItemType.DECIMAL
            else None,
        )

    def _type(self, source: ItemDef) -> ItemType:
        if source.codelist is not None and source.codelist in self.meta.codelists:
            codelist = self.meta.codelists[source.codelist]
            if not codelist.external:
                return ItemType.CHOICE
            self.report.skip(
                codelist.where.path,
                f"external or empty code list {codelist.oid}: item {source.oid} is collected as text",
            )
            return ItemType.TEXT
        kind = DATA_TYPES.get(source.data_type)
        if kind is None:
            self.report.note(
                source.where.path, f"DataType {source.data_type} has no TrialStack type: collected as text, unchecked"
            )
            return ItemType.TEXT
        return kind

    def _unit(self, source: ItemDef) -> str | None:
        if not source.units:
            return None
        if source.units[0] not in self.meta.units:
            return None
        if len(source.units) > 1:
            self.report.note(
                source.where.path,
                f"{len(source.units)} measurement units; values are collected in the first, {source.units[0]}",
            )
        return self.meta.units.get(source.units[0])

    def _limit(self, source: ItemDef, value: int | None, most: int, attribute: str) -> int | None:
        if value is None:
            return None
        if value > most:
            self.report.note(
                source.where.path, f"{attribute} {value} is above the {most} TrialStack allows; {most} used"
            )
            return most
        return value

    def codelists(self) -> list[Codelist]:
        """The code lists that choice items use, in document order; unused ones are reported."""
        result = []
        for oid, codelist in self.meta.codelists.items():
            codelist_id = self.codelist_ids.get(oid)
            if codelist_id is None:
                if not codelist.external:
                    self.report.skip(codelist.where.path, "code list not used by any imported item")
                continue
            seen: dict[str, str] = {}
            for code, decode in codelist.items:
                if code in seen:
                    self.report.skip(codelist.where.path, f"code {code!r} is listed twice; the first decode is kept")
                seen.setdefault(code, decode)
            items = tuple(CodelistItem(code=code, decode=decode) for code, decode in seen.items())
            result.append(Codelist(id=codelist_id, name=codelist.name, items=items))
            self.report.map(codelist.where.path, f"codelist {codelist_id}")
        return result
