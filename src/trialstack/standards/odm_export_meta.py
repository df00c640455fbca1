"""A StudyDefinition as ODM 1.3.2 study metadata (the Study element), and the OIDs it gave everything.

OIDs carry the conventional kind prefix (SE., F., IG., I., CL., COND., MT.) because 1.3.2 wants every
OID unique within a MetaDataVersion; the TrialStack id travels in a `trialstack:id` Alias so it comes
back unchanged. Each form is one FormDef with one ItemGroupDef. Items shared by several forms become one
ItemDef when they are identical there, else one ItemDef per variant. Checks that compare the item with
literals become RangeChecks with CheckValues (what other EDCs understand); any other check, show_if and
derivation travel as FormalExpressions in the TrialStack rule language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from trialstack.protocol.definition import EditCheck, Item, ItemType, StudyDefinition, VisitType
from trialstack.protocol.questionnaire_forms import instrument_from_form
from trialstack.standards import aliases
from trialstack.standards.odm_export_checks import RangeCheckOut, as_range_check, range_as_checks
from trialstack.standards.odm_expressions import negate
from trialstack.standards.odm_xsd import NAMESPACE_OF

NS = NAMESPACE_OF["1.3.2"]
_DATA_TYPES = {
    ItemType.INTEGER: "integer",
    ItemType.DECIMAL: "float",
    ItemType.TEXT: "text",
    ItemType.DATE: "date",
    ItemType.DATETIME: "datetime",
    ItemType.TIME: "time",
    ItemType.BOOLEAN: "boolean",
}
_NSMAP: Any = {None: NS}  # the stubs type nsmap keys as str; lxml takes None for the default namespace


def el(
    parent: etree._Element | None, name: str, attrib: dict[str, str] | None = None, text: str | None = None
) -> etree._Element:
    """An ODM 1.3.2 element (a child of `parent` when given), attributes in the given order."""
    tag = f"{{{NS}}}{name}"
    node = etree.Element(tag, nsmap=_NSMAP) if parent is None else etree.SubElement(parent, tag)
    for key, value in (attrib or {}).items():
        node.set(key, value)
    if text is not None:
        node.text = text
    return node


def translated(parent: etree._Element, name: str, text: str) -> etree._Element:
    holder = el(parent, name)
    el(holder, "TranslatedText", text=text)
    return holder


def alias(parent: etree._Element, context: str, name: str) -> None:
    el(parent, "Alias", {"Context": context, "Name": name})


@dataclass
class OdmOids:
    """The OID of every visit, form, item group and item in the exported metadata."""

    visits: dict[str, str] = field(default_factory=dict)
    forms: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    items: dict[tuple[str, str], str] = field(default_factory=dict)
    log_event: str | None = None


class MetadataWriter:
    def __init__(self, definition: StudyDefinition, warnings: list[str]) -> None:
        self.definition = definition
        self.warnings = warnings
        self.oids = OdmOids()
        self.units: dict[str, str] = {}
        self.codelist_types = {codelist.id: _codelist_type(codelist.codes()) for codelist in definition.codelists}

    def study(self, extra_codelists: list[etree._Element]) -> etree._Element:
        definition = self.definition
        study = el(None, "Study", {"OID": definition.study.id})
        variables = el(study, "GlobalVariables")
        el(variables, "StudyName", text=definition.study.name)
        el(variables, "StudyDescription", text=definition.study.description or "")
        el(variables, "ProtocolName", text=definition.study.id)
        for form in definition.forms:
            for item in form.items:
                if item.unit is not None and item.unit not in self.units:
                    self.units[item.unit] = f"MU.{len(self.units) + 1}"
        if self.units:
            basics = el(study, "BasicDefinitions")
            for unit, oid in self.units.items():
                measurement = el(basics, "MeasurementUnit", {"OID": oid, "Name": unit})
                translated(measurement, "Symbol", unit)
        version = definition.study.protocol_version
        mdv = el(
            study, "MetaDataVersion", {"OID": version, "Name": f"{definition.study.name} (protocol version {version})"}
        )
        self._protocol(mdv)
        self._events(mdv)
        self._forms(mdv)
        for codelist in extra_codelists:
            mdv.append(codelist)
        self._logic(mdv)
        return study

    def _protocol(self, mdv: etree._Element) -> None:
        definition = self.definition
        protocol = el(mdv, "Protocol")
        order = 0
        for visit in definition.schedule.visits:
            order += 1
            self.oids.visits[visit.id] = f"SE.{visit.id}"
            mandatory = "No" if visit.type is VisitType.UNSCHEDULED else "Yes"
            el(
                protocol,
                "StudyEventRef",
                {"StudyEventOID": f"SE.{visit.id}", "OrderNumber": str(order), "Mandatory": mandatory},
            )
        if definition.schedule.log_forms:
            taken = set(self.oids.visits.values())
            oid = next(
                f"SE.LOG_FORMS{suffix}"
                for suffix in ("", *map(str, range(2, 100)))
                if f"SE.LOG_FORMS{suffix}" not in taken
            )
            self.oids.log_event = oid
            el(protocol, "StudyEventRef", {"StudyEventOID": oid, "OrderNumber": str(order + 1), "Mandatory": "No"})
        if definition.study.phase is not None:
            alias(protocol, aliases.PHASE, definition.study.phase.value)
        alias(protocol, aliases.ANCHOR, definition.schedule.anchor)
        for arm in definition.arms:
            alias(protocol, aliases.ARM_PREFIX + arm.id, arm.name)
        for epoch in definition.epochs:
            alias(protocol, aliases.EPOCH_PREFIX + epoch.id, epoch.name)

    def _events(self, mdv: etree._Element) -> None:
        for visit in self.definition.schedule.visits:
            kind = "Unscheduled" if visit.type is VisitType.UNSCHEDULED else "Scheduled"
            event = el(
                mdv,
                "StudyEventDef",
                {"OID": f"SE.{visit.id}", "Name": visit.name, "Repeating": _yes(visit.repeating), "Type": kind},
            )
            for n, form in enumerate(visit.forms, start=1):
                el(event, "FormRef", {"FormOID": f"F.{form}", "OrderNumber": str(n), "Mandatory": "Yes"})
            alias(event, aliases.ID, visit.id)
            alias(event, aliases.VISIT_TYPE, visit.type.value)
            if visit.day is not None:
                alias(event, aliases.DAY, str(visit.day))
                alias(event, aliases.EARLY, str(visit.window.early))
                alias(event, aliases.LATE, str(visit.window.late))
            if visit.epoch is not None:
                alias(event, aliases.EPOCH, visit.epoch)
            alias(event, aliases.OUT_OF_WINDOW, visit.out_of_window.value)
        if self.oids.log_event is not None:
            attributes = {
                "OID": self.oids.log_event,
                "Name": "Log forms (collected outside visits)",
                "Repeating": "Yes",
                "Type": "Common",
            }
            event = el(mdv, "StudyEventDef", attributes)
            for n, form in enumerate(self.definition.schedule.log_forms, start=1):
                el(event, "FormRef", {"FormOID": f"F.{form}", "OrderNumber": str(n), "Mandatory": "No"})
            alias(event, aliases.LOG_FORMS, "Yes")

    def _forms(self, mdv: etree._Element) -> None:
        definition = self.definition
        for form in definition.forms:
            self.oids.forms[form.id] = f"F.{form.id}"
            self.oids.groups[form.id] = f"IG.{form.id}"
            node = el(mdv, "FormDef", {"OID": f"F.{form.id}", "Name": form.name, "Repeating": _yes(form.repeating)})
            el(node, "ItemGroupRef", {"ItemGroupOID": f"IG.{form.id}", "Mandatory": "Yes"})
            alias(node, aliases.ID, form.id)
        variants = self._item_variants()
        for form in definition.forms:
            attributes_of_group = {"OID": f"IG.{form.id}", "Name": form.name, "Repeating": "No"}
            if definition.instrument(form.id) == instrument_from_form(definition, form):
                attributes_of_group["Domain"] = "QS"  # the form is also this questionnaire: imported back as one
            group = el(mdv, "ItemGroupDef", attributes_of_group)
            for n, item in enumerate(form.items, start=1):
                attributes = {
                    "ItemOID": self.oids.items[(form.id, item.id)],
                    "OrderNumber": str(n),
                    "Mandatory": _yes(item.required),
                }
                if item.show_if is not None:
                    attributes["CollectionExceptionConditionOID"] = f"COND.{form.id}.{item.id}"
                if item.derived is not None:
                    attributes["MethodOID"] = f"MT.{form.id}.{item.id}"
                el(group, "ItemRef", attributes)
        for oid, (item, checks) in variants.items():
            self._item_def(mdv, oid, item, checks)
        for codelist in definition.codelists:
            node = el(
                mdv,
                "CodeList",
                {
                    "OID": f"CL.{codelist.id}",
                    "Name": codelist.name or codelist.id,
                    "DataType": self.codelist_types[codelist.id],
                },
            )
            for entry in codelist.items:
                translated(el(node, "CodeListItem", {"CodedValue": entry.code}), "Decode", entry.decode)
            alias(node, aliases.ID, codelist.id)

    def _item_variants(self) -> dict[str, tuple[Item, tuple[RangeCheckOut, ...]]]:
        """One ItemDef per distinct (item definition, range checks); forms that agree share it."""
        definition = self.definition
        by_form_item: dict[tuple[str, str], list[EditCheck]] = {}
        for check in definition.edit_checks:
            if check.visits:
                visits = ", ".join(check.visits)
                self.warnings.append(
                    f"edit check {check.id} is not exported: ODM cannot restrict it to visits {visits}"
                )
                continue
            by_form_item.setdefault((check.form, check.item), []).append(check)
        variants: dict[str, tuple[Item, tuple[RangeCheckOut, ...]]] = {}
        signatures: dict[tuple[object, ...], str] = {}
        for form in definition.forms:
            for item in form.items:
                checks = tuple(
                    as_range_check(check)
                    for check in range_as_checks(form, item) + by_form_item.get((form.id, item.id), [])
                )
                shared = item.model_copy(update={"required": False, "show_if": None, "derived": None})
                signature = (shared, checks)
                if signature not in signatures:
                    oid = f"I.{item.id}" if f"I.{item.id}" not in variants else f"I.{form.id}.{item.id}"
                    signatures[signature] = oid
                    variants[oid] = (shared, checks)
                self.oids.items[(form.id, item.id)] = signatures[signature]
        return variants

    def _item_def(self, mdv: etree._Element, oid: str, item: Item, checks: tuple[RangeCheckOut, ...]) -> None:
        data_type = (
            self.codelist_types.get(item.codelist or "", "text")
            if item.type is ItemType.CHOICE
            else _DATA_TYPES[item.type]
        )
        attributes = {"OID": oid, "Name": item.label, "DataType": data_type}
        length = item.max_length if item.type is ItemType.TEXT else item.max_digits
        if length is not None:
            attributes["Length"] = str(length)
        if item.fraction_digits is not None:
            attributes["SignificantDigits"] = str(item.fraction_digits)
        node = el(mdv, "ItemDef", attributes)
        translated(node, "Question", item.label)
        if item.unit is not None:
            el(node, "MeasurementUnitRef", {"MeasurementUnitOID": self.units[item.unit]})
        for check in checks:
            range_node = el(node, "RangeCheck", {"Comparator": check.comparator} if check.comparator else {})
            range_node.set("SoftHard", "Soft" if check.soft else "Hard")
            for value in check.values:
                el(range_node, "CheckValue", text=value)
            if check.expression is not None:
                el(range_node, "FormalExpression", {"Context": aliases.RULE_CONTEXT}, check.expression)
            if item.unit is not None:
                el(range_node, "MeasurementUnitRef", {"MeasurementUnitOID": self.units[item.unit]})
            translated(range_node, "ErrorMessage", check.message)
        if item.codelist is not None:
            el(node, "CodeListRef", {"CodeListOID": f"CL.{item.codelist}"})
        alias(node, aliases.ID, item.id)
        if item.sdv:
            alias(node, aliases.SDV, "Yes")

    def _logic(self, mdv: etree._Element) -> None:
        for form in self.definition.forms:
            for item in form.items:
                if item.show_if is not None:
                    condition = el(
                        mdv,
                        "ConditionDef",
                        {"OID": f"COND.{form.id}.{item.id}", "Name": f"{form.id}.{item.id} not collected"},
                    )
                    translated(
                        condition,
                        "Description",
                        f"{form.id}.{item.id} is not collected when this holds (show_if: {item.show_if})",
                    )
                    el(condition, "FormalExpression", {"Context": aliases.RULE_CONTEXT}, negate(item.show_if))
        for form in self.definition.forms:
            for item in form.items:
                if item.derived is not None:
                    method = el(
                        mdv,
                        "MethodDef",
                        {
                            "OID": f"MT.{form.id}.{item.id}",
                            "Name": f"{form.id}.{item.id} derivation",
                            "Type": "Computation",
                        },
                    )
                    translated(method, "Description", f"Computes {form.id}.{item.id}")
                    el(method, "FormalExpression", {"Context": aliases.RULE_CONTEXT}, item.derived)


def _codelist_type(codes: tuple[str, ...]) -> str:
    """ODM wants a DataType per code list: integer when every code is one, else text."""
    return "integer" if codes and all(code.lstrip("-").isdigit() for code in codes) else "text"


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"
