"""Questionnaires (eCOA / ePRO) as the protocol declares them: instruments, their items, scoring, alerts, schedules.

An instrument is completed by the participant, on their phone (diaries) or on a site tablet at a visit. Its items
are named like form items, so `show_if`, scores and clinical alerts are expressions of the rule language over
them; a choice item reads as its option's score in those expressions.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from trialstack.protocol.definition_base import Expression, Identifier, Label, ProtocolModel, RuleId, Text


class AnswerType(StrEnum):
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    NUMERIC_RATING = "numeric_rating"
    VISUAL_ANALOGUE = "visual_analogue"
    DATE = "date"
    TIME = "time"
    TEXT = "text"


SCALES = frozenset({AnswerType.NUMERIC_RATING, AnswerType.VISUAL_ANALOGUE})
CHOICES = frozenset({AnswerType.SINGLE_CHOICE, AnswerType.MULTIPLE_CHOICE})


class AnswerOption(ProtocolModel):
    """A choice; `score` is what the option counts in scores and alerts (its code, when the code is a number)."""

    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,20}$")]
    label: Text
    score: int | None = None

    @property
    def value(self) -> int | None:
        if self.score is not None:
            return self.score
        return int(self.code) if self.code.lstrip("-").isdigit() else None


class InstrumentItem(ProtocolModel):
    """One question; scales run `min`..`max` (numeric rating 0-10, visual analogue 0-100 by default)."""

    id: Identifier
    text: Text
    type: AnswerType
    section: Text | None = None
    options: tuple[AnswerOption, ...] = ()
    min: int | None = None
    max: int | None = None
    min_label: Text | None = None
    max_label: Text | None = None
    required: bool = True
    show_if: Expression | None = None
    max_length: int = Field(default=500, ge=1, le=4000)

    @property
    def bounds(self) -> tuple[int, int]:
        default = (0, 100) if self.type is AnswerType.VISUAL_ANALOGUE else (0, 10)
        return (self.min if self.min is not None else default[0], self.max if self.max is not None else default[1])

    def option(self, code: str) -> AnswerOption | None:
        return next((option for option in self.options if option.code == code), None)


class Score(ProtocolModel):
    """A total or subscale: an expression over the items; `max_missing` items it reads may be unanswered, and
    with `prorate` each missing one counts as the mean of the answered ones it reads (the instrument's rule)."""

    id: Identifier
    label: Text
    expression: Expression
    max_missing: int = Field(default=0, ge=0)
    prorate: bool = False


class ClinicalAlert(ProtocolModel):
    """When `when` holds on a submission, the investigator is alerted (e.g. PHQ-9 item 9 above 0)."""

    id: RuleId
    when: Expression
    message: Text


class DiaryFrequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class DiarySchedule(ProtocolModel):
    """Entries from `from_visit`'s date (or `days_before` it) to `until_visit`'s (or `days_after` `from_visit`).

    Each entry may be completed between `opens` and `closes` of its day, in the participant's time zone, and up to
    `grace_hours` after (0: no late entry).
    """

    frequency: DiaryFrequency = DiaryFrequency.DAILY
    from_visit: Identifier
    until_visit: Identifier | None = None
    days_before: int = Field(default=0, ge=0, le=365)
    days_after: int | None = Field(default=None, ge=0, le=3650)
    opens: time = time(0, 0)
    closes: time = time(23, 59, 59)
    grace_hours: int = Field(default=0, ge=0, le=72)

    @model_validator(mode="after")
    def _ends(self) -> DiarySchedule:
        if (self.until_visit is None) == (self.days_after is None):
            raise ValueError("a diary ends at `until_visit` or after `days_after` days: give exactly one")
        return self


class InstrumentSchedule(ProtocolModel):
    """At `visits` (on a site tablet, handed to the participant) and/or as a `diary` on the participant's phone."""

    visits: tuple[Identifier, ...] = ()
    diary: DiarySchedule | None = None


class Instrument(ProtocolModel):
    id: Identifier
    name: Text
    version: Label
    copyright: Text | None = None
    instructions: Text | None = None
    items: tuple[InstrumentItem, ...] = Field(min_length=1)
    scores: tuple[Score, ...] = ()
    alerts: tuple[ClinicalAlert, ...] = ()
    schedule: InstrumentSchedule = InstrumentSchedule()

    def item(self, item_id: str) -> InstrumentItem | None:
        return next((item for item in self.items if item.id == item_id), None)


class Compliance(ProtocolModel):
    """A compliance alert when a participant completed less than `threshold_percent` of the diary entries due
    over the last `over_days` days."""

    threshold_percent: int = Field(default=80, ge=1, le=100)
    over_days: int = Field(default=7, ge=1, le=90)
    clock_skew_minutes: int = Field(default=5, ge=0, le=120)


class Questionnaires(ProtocolModel):
    instruments: tuple[Instrument, ...] = Field(min_length=1)
    compliance: Compliance = Compliance()

    def instrument(self, instrument_id: str) -> Instrument | None:
        return next((instrument for instrument in self.instruments if instrument.id == instrument_id), None)
