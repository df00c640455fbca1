"""USDM activities and biomedical concepts -> forms, items and code lists.

An activity that carries biomedical concepts (or BC surrogates) becomes one form; each enabled BC
property becomes an item named after its concept and property (`TEMPERATURE_VSORRES`). Properties with
response codes become choice items over a code list (code = the NCI code, decode = its term; identical
lists are shared). An activity without concepts collects nothing the definition can name, so it gets no
form and the report says so. A surrogate (a concept known only by name) becomes one text item.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trialstack.protocol.definition import Codelist, CodelistItem, Form, Item, ItemType
from trialstack.protocol.symbols import RESERVED_NAMES
from trialstack.standards.identifiers import IdentifierMap, to_identifier
from trialstack.standards.report import MappingReport
from trialstack.standards.usdm_model import Activity, BiomedicalConcept, BiomedicalConceptProperty, StudyVersion
from trialstack.standards.usdm_source import UsdmSource

DATA_TYPES = {
    "integer": ItemType.INTEGER,
    "int": ItemType.INTEGER,
    "float": ItemType.DECIMAL,
    "double": ItemType.DECIMAL,
    "decimal": ItemType.DECIMAL,
    "number": ItemType.DECIMAL,
    "string": ItemType.TEXT,
    "text": ItemType.TEXT,
    "datetime": ItemType.DATETIME,
    "date": ItemType.DATE,
    "time": ItemType.TIME,
    "boolean": ItemType.BOOLEAN,
}


@dataclass
class ActivityForms:
    """The forms built from a design's activities, and which activity gave which form."""

    forms: list[Form] = field(default_factory=list)
    codelists: list[Codelist] = field(default_factory=list)
    form_of: dict[str, str] = field(default_factory=dict)  # activity id -> form id
    origin: dict[str, str] = field(default_factory=dict)  # form id -> JSON pointer of its activity


def _words(identifier: str, room: int) -> str:
    """The longest run of whole words (between underscores) of `identifier` that fits in `room`."""
    if len(identifier) <= room:
        return identifier
    cut = identifier[: max(room, 4)]
    return cut[: cut.rfind("_")] if "_" in cut[1:] else cut


class FormBuilder:
    def __init__(self, version: StudyVersion, source: UsdmSource, report: MappingReport) -> None:
        self.concepts = {bc.id: bc for bc in version.biomedical_concepts}
        self.surrogates = {surrogate.id: surrogate for surrogate in version.bc_surrogates}
        self.source = source
        self.report = report
        self.form_ids = IdentifierMap(fallback="F")
        self.codelist_ids = IdentifierMap(fallback="CL")
        self.codelist_by_content: dict[tuple[tuple[str, str], ...], str] = {}
        self.result = ActivityForms()

    def build(self, activities: list[Activity]) -> ActivityForms:
        for activity in activities:
            pointer = self.source.pointers.get(activity.id, "")
            items = self._items(activity)
            if not items:
                why = "its sub-timeline's activities give the forms" if activity.timeline_id else "no items to build"
                self.report.skip(pointer, f"activity {activity.name!r} has no biomedical concepts: no form ({why})")
                continue
            form_id = self.form_ids.add(activity.id, to_identifier(activity.name, fallback="F"))
            self.result.forms.append(Form(id=form_id, name=activity.title, items=tuple(items)))
            self.result.form_of[activity.id] = form_id
            self.result.origin[form_id] = pointer
            self.report.map(pointer, f"form {form_id} ({len(items)} items)", "Activity")
        return self.result

    def _items(self, activity: Activity) -> list[Item]:
        ids = IdentifierMap(reserved=RESERVED_NAMES, fallback="I")
        items: list[Item] = []
        untyped = 0
        for concept_id in activity.biomedical_concept_ids:
            concept = self.concepts[concept_id]
            longest = max((len(to_identifier(prop.name, limit=200)) for prop in concept.properties), default=0)
            room = 40 - longest - 1  # every item of a concept starts with the same words
            for prop in concept.properties:
                if not prop.is_enabled:
                    self.report.skip(
                        self.source.pointers.get(prop.id, ""), f"property {prop.name} of {concept.name} is not enabled"
                    )
                    continue
                untyped += not prop.datatype and not prop.response_codes
                items.append(self._item(ids, concept, prop, room))
        for surrogate_id in activity.bc_surrogate_ids:
            surrogate = self.surrogates[surrogate_id]
            item_id = ids.add(surrogate.id, to_identifier(surrogate.name, fallback="I"))
            items.append(Item(id=item_id, label=surrogate.title, type=ItemType.TEXT))
            self.report.note(
                self.source.pointers.get(surrogate.id, ""),
                f"BC surrogate {surrogate.name!r} has no properties: one text item {item_id}",
            )
        if untyped:
            self.report.note(
                self.source.pointers.get(activity.id, ""),
                f"{untyped} concept properties of {activity.name!r} have no datatype: collected as text",
            )
        return items

    def _item(self, ids: IdentifierMap, concept: BiomedicalConcept, prop: BiomedicalConceptProperty, room: int) -> Item:
        prop_part = to_identifier(prop.name, fallback="P", limit=200)
        concept_part = to_identifier(concept.name, fallback="BC", limit=200)
        if prop_part == concept_part:
            base = to_identifier(prop_part)
        else:
            base = to_identifier(f"{_words(concept_part, room)}_{prop_part}")
        item_id = ids.add(prop.id, base)
        label = f"{concept.title}: {prop.title}" if prop.title != concept.title else concept.title
        codes = [
            (code.code.code, code.code.decode or code.code.code) for code in prop.response_codes if code.is_enabled
        ]
        kind = ItemType.CHOICE if codes else DATA_TYPES.get(prop.datatype.strip().lower(), ItemType.TEXT)
        if prop.datatype and not codes and prop.datatype.strip().lower() not in DATA_TYPES:
            self.report.note(
                self.source.pointers.get(prop.id, ""),
                f"datatype {prop.datatype!r} has no TrialStack type: collected as text",
            )
        codelist = self._codelist(prop, codes) if codes else None
        return Item(id=item_id, label=label, type=kind, codelist=codelist, required=prop.is_required)

    def _codelist(self, prop: BiomedicalConceptProperty, codes: list[tuple[str, str]]) -> str:
        first: dict[str, tuple[str, str]] = {}
        for code, decode in codes:
            first.setdefault(code, (code, decode))
        content = tuple(first.values())
        if content not in self.codelist_by_content:
            codelist_id = self.codelist_ids.add(prop.id, to_identifier(prop.name, fallback="CL"))
            self.codelist_by_content[content] = codelist_id
            items = tuple(CodelistItem(code=code, decode=decode) for code, decode in content)
            self.result.codelists.append(Codelist(id=codelist_id, name=prop.title, items=items))
        return self.codelist_by_content[content]
