"""Key risk indicators: the enrolment plan per site, the levels at which a KRI turns to warning or breach, and
which log form records adverse events.

Every KRI is computed whether or not a study declares this section (docs/decisions/0013-kris.md): the section
adds a plan to measure enrolment against and the thresholds that give a figure its status. AE and SAE rates are
judged by their funnel plot (a site against the study's rate for its exposure), not by a threshold.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, PositiveInt, StringConstraints, model_validator

from trialstack.protocol.definition_base import Identifier, Number, ProtocolModel, SiteId


class KriId(StrEnum):
    """The KRIs TrialStack computes (what each measures: docs/study-format.md, *Key risk indicators*)."""

    ENROLMENT_VS_PLAN = "ENROLMENT_VS_PLAN"
    SCREEN_FAILURE_RATE = "SCREEN_FAILURE_RATE"
    OPEN_QUERIES = "OPEN_QUERIES"
    QUERY_AGE_OVER_30 = "QUERY_AGE_OVER_30"
    QUERY_TURNAROUND = "QUERY_TURNAROUND"
    DATA_ENTRY_LAG = "DATA_ENTRY_LAG"
    MISSING_PAGES = "MISSING_PAGES"
    SDV_BACKLOG = "SDV_BACKLOG"
    VISITS_OUT_OF_WINDOW = "VISITS_OUT_OF_WINDOW"
    EDIT_CHECK_FAILURES = "EDIT_CHECK_FAILURES"
    EPRO_COMPLIANCE = "EPRO_COMPLIANCE"
    AE_RATE = "AE_RATE"
    SAE_RATE = "SAE_RATE"
    KITS_QUARANTINED = "KITS_QUARANTINED"
    DISPENSING_MISSED = "DISPENSING_MISSED"


FUNNEL_KRIS = frozenset({KriId.AE_RATE, KriId.SAE_RATE})
"""KRIs whose status comes from their funnel plot's control limits, never from a threshold."""

Month = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


class Direction(StrEnum):
    """Which way is worse: a figure `above` its levels (open queries) or `below` them (enrolment, compliance)."""

    ABOVE = "above"
    BELOW = "below"


class AppliesTo(StrEnum):
    """Whether a threshold judges each site's figure, the study-wide one, or both (counts grow with the sites)."""

    SITE = "site"
    STUDY = "study"
    BOTH = "both"


class EnrolmentPlan(ProtocolModel):
    """A site enrols `per_month` subjects a month from the month `from` (YYYY-MM) until it reaches `target`."""

    model_config = ConfigDict(frozen=True, extra="forbid", serialize_by_alias=True)

    site: SiteId
    start: Month = Field(alias="from")
    per_month: PositiveInt
    target: PositiveInt


class KriThreshold(ProtocolModel):
    """A KRI reaching `warn` is a warning, reaching `breach` a breach, in its `direction` (either may be left out)."""

    kri: KriId
    warn: Number | None = None
    breach: Number | None = None
    direction: Direction
    applies_to: AppliesTo = AppliesTo.BOTH

    @model_validator(mode="after")
    def _levels(self) -> KriThreshold:
        if self.warn is None and self.breach is None:
            raise ValueError(f"the threshold of {self.kri.value} needs warn, breach or both")
        if self.warn is not None and self.breach is not None:
            worse = self.breach >= self.warn if self.direction is Direction.ABOVE else self.breach <= self.warn
            if not worse:
                side = "below" if self.direction is Direction.ABOVE else "above"
                raise ValueError(
                    f"breach {self.breach} is {side} warn {self.warn}: with direction {self.direction.value} "
                    "the breach level must be the worse one"
                )
        return self


class AdverseEventSource(ProtocolModel):
    """The log form that records adverse events, and the item and value that make one serious."""

    form: Identifier = "AE"
    serious_item: Identifier = "AESER"
    serious_value: Annotated[str, StringConstraints(min_length=1)] = "Y"


class Kris(ProtocolModel):
    enrolment_plan: tuple[EnrolmentPlan, ...] = ()
    thresholds: tuple[KriThreshold, ...] = ()
    adverse_events: AdverseEventSource = AdverseEventSource()

    def threshold(self, kri: KriId) -> KriThreshold | None:
        return next((threshold for threshold in self.thresholds if threshold.kri is kri), None)

    def plan_for(self, site_id: str) -> EnrolmentPlan | None:
        return next((plan for plan in self.enrolment_plan if plan.site == site_id), None)
