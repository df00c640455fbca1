"""OID references: the ones that hold the study together must resolve, the others degrade with a warning.

The XSD checks structure, not references (ODM 1.3.2 declares no keyrefs), so a FormRef to a FormDef that
is not there passes the schema. A dangling event, form, group or item reference leaves a form or visit
that cannot be built: a located error. A dangling code list, unit, condition, method or timing reference
(real files have them, e.g. odmlib's CDASH example) loses that one detail: the importer carries on and
the report says what was lost. Definitions nothing refers to are reported as not mapped.
"""

from __future__ import annotations

from collections.abc import Iterator

from trialstack.protocol.problems import StudyProblem
from trialstack.standards.odm_meta import OdmMeta, Ref
from trialstack.standards.odm_xml import Where
from trialstack.standards.report import MappingReport


def dangling_references(meta: OdmMeta) -> list[StudyProblem]:
    """One located problem per reference to an OID that the MetaDataVersion does not define."""
    return [StudyProblem(meta.file, where.line, 1, where.path, message) for where, message in _dangling(meta)]


def _missing(where: Where, what: str, oid: str) -> tuple[Where, str]:
    return where, f"{what} {oid!r} is not defined in this MetaDataVersion"


def _dangling(meta: OdmMeta) -> Iterator[tuple[Where, str]]:
    for oid in meta.event_order:
        if oid not in meta.events:
            yield _missing(meta.event_refs.get(oid, meta.where), "StudyEventDef", oid)
    form_defs = meta.forms if meta.version == "1.3.2" else meta.groups
    form_kind = "FormDef" if meta.version == "1.3.2" else "ItemGroupDef"
    for event in meta.events.values():
        for ref in event.forms:
            if ref.oid not in form_defs:
                yield _missing(ref.where, form_kind, ref.oid)
    for ref in _container_refs(meta):
        if ref.kind == "item" and ref.oid not in meta.items:
            yield _missing(ref.where, "ItemDef", ref.oid)
        elif ref.kind == "group" and ref.oid not in meta.groups:
            yield _missing(ref.where, "ItemGroupDef", ref.oid)


def _container_refs(meta: OdmMeta) -> list[Ref]:
    return [
        *(ref for form in meta.forms.values() for ref in form.children),
        *(ref for group in meta.groups.values() for ref in group.children),
    ]


def report_missing(meta: OdmMeta, report: MappingReport) -> None:
    """References to code lists, units, conditions, methods and events whose loss only degrades the import."""
    for item in meta.items.values():
        if item.codelist is not None and item.codelist not in meta.codelists:
            report.skip(
                item.where.path, f"CodeList {item.codelist!r} is not defined: the item is collected as {item.data_type}"
            )
        units = [*item.units, *(check.unit for check in item.checks if check.unit is not None)]
        for unit in dict.fromkeys(units):
            if unit not in meta.units:
                report.skip(item.where.path, f"MeasurementUnit {unit!r} is not defined")
    for ref in [*(ref for event in meta.events.values() for ref in event.forms), *_container_refs(meta)]:
        if ref.condition is not None and ref.condition not in meta.conditions:
            report.skip(ref.where.path, f"ConditionDef {ref.condition!r} is not defined")
        if ref.method is not None and ref.method not in meta.methods:
            report.skip(ref.where.path, f"MethodDef {ref.method!r} is not defined")
    for timing in meta.timings:
        for oid in (timing.predecessor, timing.successor):
            if oid not in meta.events:
                report.skip(timing.where.path, f"StudyEventDef {oid!r} is not defined: the timing is not used")


def report_unused(meta: OdmMeta, report: MappingReport) -> None:
    """ConditionDefs and MethodDefs no reference uses: kept in the report, since nothing will apply them."""
    refs = [*(ref for event in meta.events.values() for ref in event.forms), *_container_refs(meta)]
    used_conditions = {ref.condition for ref in refs}
    used_methods = {ref.method for ref in refs}
    for oid, condition in meta.conditions.items():
        if oid not in used_conditions:
            report.skip(condition.where.path, "ConditionDef not referenced by any ItemRef, ItemGroupRef or FormRef")
    for oid, method in meta.methods.items():
        if oid not in used_methods:
            report.skip(method.where.path, "MethodDef not referenced by any ItemRef")
