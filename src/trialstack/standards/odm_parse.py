"""Read the study metadata of a schema-valid ODM 1.3.2 or 2.0 document into an `OdmMeta`.

Only reading happens here (which element holds what in each version); deciding what becomes of it
is `odm_mapping`'s job. The document is already XSD-valid, so required attributes are present.
"""

from __future__ import annotations

from typing import Literal

from lxml import etree

from trialstack.protocol.problems import StudyDefinitionError, StudyProblem
from trialstack.standards.odm_meta import (
    CodeListDef,
    EventDef,
    Expression,
    FormDef,
    GroupDef,
    ItemDef,
    LogicDef,
    OdmMeta,
    RangeCheck,
    Ref,
)
from trialstack.standards.odm_parse_protocol import ProtocolReader
from trialstack.standards.odm_xml import XML_LANG, OdmXml, Where, attr, clean, integer, name_of
from trialstack.standards.odm_xsd import NAMESPACE_OF, OdmDocument

RefKind = Literal["event", "form", "group", "item"]


def _fail(document: OdmDocument, element: etree._Element, message: str) -> StudyDefinitionError:
    where = Where.of(element)
    return StudyDefinitionError(document.file, [StudyProblem(document.file, where.line, 1, where.path, message)])


def read_meta(document: OdmDocument) -> OdmMeta:
    """The one MetaDataVersion to import (the last of the first study) and its study's names."""
    x = OdmXml(NAMESPACE_OF[document.version], document.root.get(XML_LANG))
    root = document.root
    skipped: list[tuple[str, str]] = []
    if x.is_(root, "MetaDataVersion"):
        study, mdv = None, root
    else:
        studies = x.all(root, "Study")
        if not studies:
            raise _fail(document, root, "the file has no Study element: there is no study definition to import")
        study = studies[0]
        skipped += [(Where.of(other).path, "only the first Study of a file is imported") for other in studies[1:]]
        versions = x.all(study, "MetaDataVersion")
        if not versions:
            raise _fail(document, study, "the Study has no MetaDataVersion: there is no study definition to import")
        mdv = versions[-1]
        skipped += [(Where.of(old).path, "only the last MetaDataVersion is imported") for old in versions[:-1]]
    meta = _study_names(document, x, study, mdv)
    meta.skipped += skipped
    include = x.one(mdv, "Include")
    if include is not None:
        meta.skipped.append(
            (Where.of(include).path, f"Include of MetaDataVersion {include.get('MetaDataVersionOID')} is not resolved")
        )
    admin = x.all(root, "AdminData") if x.is_(root, "ODM") else []
    for element in admin:
        meta.skipped.append(
            (Where.of(element).path, "AdminData (users, sites, signatures) is not part of a study definition")
        )
    reader = _Reader(x, meta)
    reader.read(mdv, study)
    return meta


def _study_names(document: OdmDocument, x: OdmXml, study: etree._Element | None, mdv: etree._Element) -> OdmMeta:
    mdv_oid, mdv_name = attr(mdv, "OID"), attr(mdv, "Name")
    where = Where.of(study if study is not None else mdv)
    if study is None:
        name, description, oid = mdv_name, x.text(mdv, "Description"), mdv_oid
    elif document.version == "1.3.2":
        variables = x.one(study, "GlobalVariables")
        assert_present = variables if variables is not None else study
        name = x.plain(assert_present, "StudyName") or attr(study, "OID")
        description = x.plain(assert_present, "StudyDescription")
        oid = attr(study, "OID")
    else:
        name = clean(study.get("StudyName")) or attr(study, "OID")
        description = x.text(study, "Description")
        oid = attr(study, "OID")
    return OdmMeta(document.version, document.file, where, oid, name, description, mdv_oid, mdv_name, Where.of(mdv))


class _Reader:
    def __init__(self, x: OdmXml, meta: OdmMeta) -> None:
        self.x = x
        self.meta = meta

    def read(self, mdv: etree._Element, study: etree._Element | None) -> None:
        x, meta = self.x, self.meta
        if study is not None:
            basics = x.one(study, "BasicDefinitions")
            for unit in x.all(basics, "MeasurementUnit") if basics is not None else []:
                meta.units[attr(unit, "OID")] = x.text(unit, "Symbol") or attr(unit, "Name")
        protocol = x.one(mdv, "Protocol")
        if protocol is not None:
            ProtocolReader(x, meta).read(protocol, mdv)
        for event in x.all(mdv, "StudyEventDef"):
            tag = "FormRef" if meta.version == "1.3.2" else "ItemGroupRef"
            refs = self._refs(event, {tag: ("form", tag.replace("Ref", "OID"))})
            meta.events[attr(event, "OID")] = EventDef(
                attr(event, "OID"),
                name_of(event),
                event.get("Repeating") == "Yes",
                event.get("Type") or "Scheduled",
                refs,
                Where.of(event),
                x.aliases(event),
            )
        meta.event_order += [oid for oid in meta.events if oid not in meta.event_order]
        for form in x.all(mdv, "FormDef"):
            meta.forms[attr(form, "OID")] = FormDef(
                attr(form, "OID"),
                name_of(form),
                form.get("Repeating") == "Yes",
                self._refs(form, {"ItemGroupRef": ("group", "ItemGroupOID")}),
                Where.of(form),
                x.aliases(form),
            )
        for group in x.all(mdv, "ItemGroupDef"):
            self._group(group)
        for item in x.all(mdv, "ItemDef"):
            self._item(item)
        for codelist in x.all(mdv, "CodeList"):
            self._codelist(codelist)
        for kind, target in (("ConditionDef", meta.conditions), ("MethodDef", meta.methods)):
            for logic in x.all(mdv, kind):
                target[attr(logic, "OID")] = LogicDef(
                    attr(logic, "OID"),
                    name_of(logic),
                    x.text(logic, "Description"),
                    self._expressions(logic),
                    Where.of(logic),
                )

    def _refs(self, element: etree._Element, kinds: dict[str, tuple[RefKind, str]]) -> tuple[Ref, ...]:
        """Child refs of the given tags ({tag: (kind, OID attribute)}) in OrderNumber order, else document order."""
        found = [
            (index, child, *kinds[etree.QName(child).localname])
            for index, child in enumerate(element)
            if isinstance(child.tag, str)
            and etree.QName(child).localname in kinds
            and child.tag.startswith("{" + self.x.namespace)
        ]
        found.sort(
            key=lambda entry: (
                integer(entry[1].get("OrderNumber")) is None,
                integer(entry[1].get("OrderNumber")) or 0,
                entry[0],
            )
        )
        return tuple(
            Ref(
                kind,
                child.get(attribute, ""),
                child.get("Mandatory") == "Yes",
                integer(child.get("OrderNumber")),
                Where.of(child),
                child.get("CollectionExceptionConditionOID"),
                child.get("MethodOID"),
            )
            for _, child, kind, attribute in found
        )

    def _group(self, group: etree._Element) -> None:
        repeating = group.get("Repeating", "No") not in ("No",)
        self.meta.groups[attr(group, "OID")] = GroupDef(
            attr(group, "OID"),
            name_of(group),
            repeating,
            group.get("Type"),
            self._refs(group, {"ItemRef": ("item", "ItemOID"), "ItemGroupRef": ("group", "ItemGroupOID")}),
            Where.of(group),
            self.x.aliases(group),
            attr(group, "Repeating") or "No",
            group.get("Domain"),
        )

    def _item(self, item: etree._Element) -> None:
        x = self.x
        codelist = x.one(item, "CodeListRef")
        self.meta.items[attr(item, "OID")] = ItemDef(
            attr(item, "OID"),
            name_of(item),
            item.get("DataType", "text"),
            Where.of(item),
            integer(item.get("Length")),
            integer(item.get("SignificantDigits")),
            x.text(item, "Question"),
            codelist.get("CodeListOID") if codelist is not None else None,
            tuple(attr(ref, "MeasurementUnitOID") for ref in x.all(item, "MeasurementUnitRef")),
            tuple(self._check(check) for check in x.all(item, "RangeCheck")),
            x.aliases(item),
        )

    def _check(self, check: etree._Element) -> RangeCheck:
        x = self.x
        unit = x.one(check, "MeasurementUnitRef")
        return RangeCheck(
            check.get("Comparator"),
            check.get("SoftHard", "Soft") == "Soft",
            tuple(clean(value.text) or "" for value in x.all(check, "CheckValue")),
            self._expressions(check),
            unit.get("MeasurementUnitOID") if unit is not None else None,
            x.text(check, "ErrorMessage"),
            Where.of(check),
        )

    def _expressions(self, element: etree._Element) -> tuple[Expression, ...]:
        found = []
        for expression in self.x.all(element, "FormalExpression"):
            if self.meta.version == "1.3.2":
                text = (expression.text or "").strip() or None
            else:
                code = self.x.one(expression, "Code")
                text = (code.text or "").strip() or None if code is not None else None
            found.append(Expression(attr(expression, "Context"), text))
        return tuple(found)

    def _codelist(self, codelist: etree._Element) -> None:
        x = self.x
        entries = [
            (str(attr(entry, "CodedValue")), x.text(entry, "Decode") or str(attr(entry, "CodedValue")))
            for entry in codelist
            if x.is_(entry, "CodeListItem") or x.is_(entry, "EnumeratedItem")
        ]
        self.meta.codelists[attr(codelist, "OID")] = CodeListDef(
            attr(codelist, "OID"),
            name_of(codelist),
            tuple(entries),
            Where.of(codelist),
            external=x.one(codelist, "ExternalCodeList") is not None or not entries,
            aliases=x.aliases(codelist),
        )
