"""ODM study metadata as plain, version-neutral values: what `odm_parse` reads from 1.3.2 or 2.0.

ODM 2.0 folded FormDef into ItemGroupDef (Type="Form"), nests item groups, and models arms, epochs and
timings; 1.3.2 has FormDef, flat item groups and measurement units. Both read into these records so the
mapping to a StudyDefinition is written once. Every record keeps `where` for located messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from trialstack.standards.odm_xml import Where
from trialstack.standards.odm_xsd import OdmVersion


@dataclass(frozen=True)
class Expression:
    """A FormalExpression: its Context (the language) and its text (None for an external code library)."""

    context: str
    text: str | None


@dataclass(frozen=True)
class Ref:
    """A reference from a container to a def (StudyEventRef, FormRef, ItemGroupRef, ItemRef)."""

    kind: Literal["event", "form", "group", "item"]
    oid: str
    mandatory: bool
    order: int | None
    where: Where
    condition: str | None = None
    method: str | None = None


@dataclass(frozen=True)
class RangeCheck:
    comparator: str | None
    soft: bool
    values: tuple[str, ...]
    expressions: tuple[Expression, ...]
    unit: str | None
    message: str | None
    where: Where


@dataclass(frozen=True)
class ItemDef:
    oid: str
    name: str
    data_type: str
    where: Where
    length: int | None = None
    significant_digits: int | None = None
    question: str | None = None
    codelist: str | None = None
    units: tuple[str, ...] = ()
    checks: tuple[RangeCheck, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupDef:
    """An ItemGroupDef (in 2.0 also a form: `kind` "Form"); `children` are item and group refs in order."""

    oid: str
    name: str
    repeating: bool
    kind: str | None
    children: tuple[Ref, ...]
    where: Where
    aliases: dict[str, str] = field(default_factory=dict)
    repeat: str = "No"  # ODM 2.0 tells Simple, Dynamic and Static (one row per code of a code list) apart
    domain: str | None = None  # the SDTM domain its data goes to (QS: a questionnaire)


@dataclass(frozen=True)
class FormDef:
    oid: str
    name: str
    repeating: bool
    children: tuple[Ref, ...]
    where: Where
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventDef:
    oid: str
    name: str
    repeating: bool
    type: str
    forms: tuple[Ref, ...]
    where: Where
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CodeListDef:
    oid: str
    name: str
    items: tuple[tuple[str, str], ...]
    where: Where
    external: bool = False
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogicDef:
    """A ConditionDef or MethodDef: named FormalExpressions (one per language)."""

    oid: str
    name: str
    description: str | None
    expressions: tuple[Expression, ...]
    where: Where


@dataclass(frozen=True)
class Timing:
    """An ODM 2.0 timing constraint, reduced to: `successor` happens `target` after `predecessor`."""

    oid: str
    predecessor: str
    successor: str
    target: str
    pre_window: str | None
    post_window: str | None
    relation: str
    direct: bool  # a RelativeTimingConstraint (True) or one on a workflow transition (False)
    where: Where


@dataclass(frozen=True)
class Named:
    """An arm or an epoch: OID, name, and where it is."""

    oid: str
    name: str
    where: Where


@dataclass
class OdmMeta:
    """One MetaDataVersion with the study around it, version-neutral."""

    version: OdmVersion
    file: str
    where: Where
    study_oid: str
    study_name: str
    study_description: str | None
    mdv_oid: str
    mdv_name: str
    mdv_where: Where | None = None
    trial_phase: str | None = None
    protocol_aliases: dict[str, str] = field(default_factory=dict)
    event_order: list[str] = field(default_factory=list)
    event_refs: dict[str, Where] = field(default_factory=dict)  # where the protocol references each event
    events: dict[str, EventDef] = field(default_factory=dict)
    forms: dict[str, FormDef] = field(default_factory=dict)
    groups: dict[str, GroupDef] = field(default_factory=dict)
    items: dict[str, ItemDef] = field(default_factory=dict)
    codelists: dict[str, CodeListDef] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, LogicDef] = field(default_factory=dict)
    methods: dict[str, LogicDef] = field(default_factory=dict)
    arms: list[Named] = field(default_factory=list)
    epochs: list[Named] = field(default_factory=list)
    event_epochs: dict[str, str] = field(default_factory=dict)
    timings: list[Timing] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, what was not read)
