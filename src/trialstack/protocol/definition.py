"""The StudyDefinition: everything the protocol declares, as one immutable, hashable value.

Loaded from YAML, CDISC ODM or USDM (`trialstack.standards.loader.load_study_file`); published as a StudyVersion
(`version`). The parts live in sibling modules and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field

from trialstack.protocol.definition_base import (
    CheckAction,
    Identifier,
    Label,
    ProtocolModel,
    SiteId,
    Text,
)
from trialstack.protocol.definition_checks import (
    CriterionKind,
    EditCheck,
    Eligibility,
    EligibilityCriterion,
    range_check,
    range_checks,
)
from trialstack.protocol.definition_conduct import (
    SITE_FACTOR,
    Blinding,
    BlindingLevel,
    Imbalance,
    Minimization,
    Randomization,
    RandomizationScheme,
    Strata,
    StratificationFactor,
    StratumLevel,
    StudyRole,
)
from trialstack.protocol.definition_consent import (
    ComprehensionQuestion,
    ConsentDocument,
    ConsentText,
    ConsentVersion,
    GatedAction,
    OptionalPart,
    ReconsentScope,
)
from trialstack.protocol.definition_forms import Codelist, CodelistItem, Form, Item, ItemType, Range
from trialstack.protocol.definition_kris import (
    AdverseEventSource,
    AppliesTo,
    Direction,
    EnrolmentPlan,
    KriId,
    Kris,
    KriThreshold,
)
from trialstack.protocol.definition_labs import AgeBand, LabExpectations, LabRange, Labs, LabSource, LabTest
from trialstack.protocol.definition_questionnaires import Instrument, InstrumentItem, Questionnaires
from trialstack.protocol.definition_supply import Depot, Dispensing, ResupplyLevels, Supply
from trialstack.protocol.schedule import Schedule, Visit, VisitType, Window

__all__ = [
    "SITE_FACTOR",
    "AdverseEventSource",
    "AgeBand",
    "AppliesTo",
    "Arm",
    "Blinding",
    "BlindingLevel",
    "CheckAction",
    "Codelist",
    "CodelistItem",
    "ComprehensionQuestion",
    "ConsentDocument",
    "ConsentText",
    "ConsentVersion",
    "CriterionKind",
    "Depot",
    "Direction",
    "Dispensing",
    "EditCheck",
    "Eligibility",
    "EligibilityCriterion",
    "EnrolmentPlan",
    "Epoch",
    "Form",
    "GatedAction",
    "Imbalance",
    "Instrument",
    "InstrumentItem",
    "Item",
    "ItemType",
    "KriId",
    "KriThreshold",
    "Kris",
    "LabExpectations",
    "LabRange",
    "LabSource",
    "LabTest",
    "Labs",
    "Minimization",
    "OptionalPart",
    "Questionnaires",
    "Randomization",
    "RandomizationScheme",
    "Range",
    "ReconsentScope",
    "ResupplyLevels",
    "Schedule",
    "Site",
    "Strata",
    "StratificationFactor",
    "StratumLevel",
    "Study",
    "StudyDefinition",
    "StudyPhase",
    "StudyRole",
    "Supply",
    "Visit",
    "VisitType",
    "Window",
    "range_check",
    "range_checks",
]


class StudyPhase(StrEnum):
    PHASE_1 = "1"
    PHASE_1_2 = "1/2"
    PHASE_2 = "2"
    PHASE_2A = "2a"
    PHASE_2B = "2b"
    PHASE_2_3 = "2/3"
    PHASE_3 = "3"
    PHASE_4 = "4"


def _phase_as_text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Study(ProtocolModel):
    """The study's identity; `protocol_version` is the label of the protocol document (e.g. "2.0").

    `phase` is None when the source gives none (ODM 1.3.2 has no phase) or one the model lacks (phase 0,
    not applicable); left out, it is also left out of the canonical JSON, so existing hashes hold.
    """

    id: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_-]*$", max_length=40)]
    name: Text
    phase: Annotated[StudyPhase | None, BeforeValidator(_phase_as_text)] = None
    protocol_version: Label
    description: Text | None = None


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Europe/Madrid") from None
    return name


class Site(ProtocolModel):
    """A site; `time_zone` (IANA) is where its participants' diary windows are counted unless they set their own."""

    id: SiteId
    name: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]  # ISO 3166-1 alpha-2
    time_zone: Annotated[str, AfterValidator(_known_time_zone)] = "UTC"


class Arm(ProtocolModel):
    id: Identifier
    name: Text


class Epoch(ProtocolModel):
    id: Identifier
    name: Text


class StudyDefinition(ProtocolModel):
    """The protocol as data (DESIGN.md §3). Structure only; `validation` checks that it holds together."""

    study: Study
    sites: tuple[Site, ...] = ()
    arms: tuple[Arm, ...] = ()
    epochs: tuple[Epoch, ...] = ()
    codelists: tuple[Codelist, ...] = ()
    schedule: Schedule
    forms: tuple[Form, ...] = Field(min_length=1)
    edit_checks: tuple[EditCheck, ...] = ()
    eligibility: Eligibility | None = None
    randomization: Randomization | None = None
    supply: Supply | None = None
    consent: tuple[ConsentDocument, ...] = ()
    questionnaires: Questionnaires | None = None
    blinding: Blinding | None = None
    kris: Kris | None = None
    labs: Labs | None = None

    def consent_document(self, document_id: str) -> ConsentDocument | None:
        return next((document for document in self.consent if document.id == document_id), None)

    def instrument(self, instrument_id: str) -> Instrument | None:
        return self.questionnaires.instrument(instrument_id) if self.questionnaires is not None else None

    def form(self, form_id: str) -> Form | None:
        return next((form for form in self.forms if form.id == form_id), None)

    def visit(self, visit_id: str) -> Visit | None:
        return self.schedule.visit(visit_id)

    def codelist(self, codelist_id: str) -> Codelist | None:
        return next((codelist for codelist in self.codelists if codelist.id == codelist_id), None)

    def all_edit_checks(self) -> Iterator[EditCheck]:
        """The explicit edit checks, then one per item range: what the rule engine runs."""
        yield from self.edit_checks
        for _form, _item, check in range_checks(self.forms):
            yield check
