"""The part of CDISC USDM v4 that TrialStack reads, as Pydantic models (unknown keys are ignored).

USDM is large (objectives, estimands, narrative content, ...); these models name only what maps to a
StudyDefinition, so a file with more than we read still loads, and a file missing what we need fails
with the JSON pointer of the gap. Field names follow the USDM JSON (camelCase) through aliases.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasGenerator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

# USDM writes null for empty text (the pilot's study has "id": null); read it as "".
Text = Annotated[str, BeforeValidator(lambda value: "" if value is None else value)]


class UsdmModel(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        alias_generator=AliasGenerator(validation_alias=to_camel),
        populate_by_name=True,
    )


class Code(UsdmModel):
    id: str
    code: Text
    decode: Text = ""


class AliasCode(UsdmModel):
    id: str
    standard_code: Code


class Identified(UsdmModel):
    """Every USDM object we read has an id and a name; most have a label and a description."""

    id: str
    name: Text = ""
    label: str | None = None
    description: str | None = None

    @property
    def title(self) -> str:
        """The label when there is one, else the name: what a site user should read."""
        return (self.label or "").strip() or self.name.strip() or self.id


class StudySite(Identified):
    country: Code | None = None


class Organization(Identified):
    type: Code | None = None
    managed_sites: list[StudySite] = Field(default_factory=list)


class StudyIdentifier(UsdmModel):
    id: str
    text: str
    scope_id: str | None = None


class StudyTitle(UsdmModel):
    id: str
    text: str
    type: Code


class ResponseCode(UsdmModel):
    id: str
    is_enabled: bool = True
    code: Code


class BiomedicalConceptProperty(Identified):
    is_required: bool = False
    is_enabled: bool = True
    datatype: Text = ""
    response_codes: list[ResponseCode] = Field(default_factory=list)


class BiomedicalConcept(Identified):
    properties: list[BiomedicalConceptProperty] = Field(default_factory=list)


class BiomedicalConceptSurrogate(Identified):
    pass


class EligibilityCriterionItem(Identified):
    text: Text = ""
    dictionary_id: str | None = None


class EligibilityCriterion(Identified):
    category: Code
    identifier: Text = ""
    criterion_item_id: str | None = None


class ParameterMap(UsdmModel):
    id: str
    tag: str
    reference: str


class SyntaxTemplateDictionary(Identified):
    parameter_maps: list[ParameterMap] = Field(default_factory=list)


class StudyArm(Identified):
    pass


class StudyEpoch(Identified):
    previous_id: str | None = None
    next_id: str | None = None


class Encounter(Identified):
    previous_id: str | None = None
    next_id: str | None = None
    scheduled_at_id: str | None = None
    type: Code | None = None


class Activity(Identified):
    biomedical_concept_ids: list[str] = Field(default_factory=list)
    bc_surrogate_ids: list[str] = Field(default_factory=list)
    bc_category_ids: list[str] = Field(default_factory=list)
    timeline_id: str | None = None


class ScheduledInstance(Identified):
    """A ScheduledActivityInstance or ScheduledDecisionInstance of a timeline."""

    instance_type: str
    activity_ids: list[str] = Field(default_factory=list)
    encounter_id: str | None = None
    epoch_id: str | None = None
    default_condition_id: str | None = None


class Timing(Identified):
    type: Code
    value: str
    relative_to_from: Code | None = None
    relative_from_scheduled_instance_id: str
    relative_to_scheduled_instance_id: str | None = None
    window_lower: str | None = None
    window_upper: str | None = None


class ScheduleTimeline(Identified):
    main_timeline: bool = False
    entry_condition: str | None = None
    entry_id: str | None = None
    timings: list[Timing] = Field(default_factory=list)
    instances: list[ScheduledInstance] = Field(default_factory=list)


class StudyDesign(Identified):
    study_phase: AliasCode | None = None
    arms: list[StudyArm] = Field(default_factory=list)
    epochs: list[StudyEpoch] = Field(default_factory=list)
    encounters: list[Encounter] = Field(default_factory=list)
    activities: list[Activity] = Field(default_factory=list)
    schedule_timelines: list[ScheduleTimeline] = Field(default_factory=list)
    eligibility_criteria: list[EligibilityCriterion] = Field(default_factory=list)


class StudyVersion(UsdmModel):
    id: str
    version_identifier: str
    study_identifiers: list[StudyIdentifier] = Field(default_factory=list)
    titles: list[StudyTitle] = Field(default_factory=list)
    organizations: list[Organization] = Field(default_factory=list)
    study_designs: list[StudyDesign] = Field(min_length=1)
    eligibility_criterion_items: list[EligibilityCriterionItem] = Field(default_factory=list)
    biomedical_concepts: list[BiomedicalConcept] = Field(default_factory=list)
    bc_surrogates: list[BiomedicalConceptSurrogate] = Field(default_factory=list)
    dictionaries: list[SyntaxTemplateDictionary] = Field(default_factory=list)


class Study(UsdmModel):
    id: Text = ""
    name: Text = ""
    label: str | None = None
    description: str | None = None
    versions: list[StudyVersion] = Field(min_length=1)


class Wrapper(UsdmModel):
    """The USDM file: the study, and the USDM version it was written against."""

    study: Study
    usdm_version: str
