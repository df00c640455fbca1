"""The schedule of assessments: visits, their nominal study days and windows, and study-day arithmetic.

Study days follow the CDISC convention: the anchor visit is day 1, the day before it is day -1, and
there is no day 0. Windows are counted in calendar days around the nominal date, so the arithmetic
goes through day *offsets* (days since the anchor date) to step across the missing day 0.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from trialstack.protocol.definition_base import CheckAction, Identifier, ProtocolModel, Text


def _not_day_zero(day: int) -> int:
    if day == 0:
        raise ValueError("there is no study day 0: the anchor visit is day 1 and the day before it is day -1")
    return day


StudyDay = Annotated[int, Field(ge=-3650, le=36500), AfterValidator(_not_day_zero)]


def day_offset(study_day: int) -> int:
    """Days from the anchor date to `study_day` (day 1 -> 0, day -1 -> -1, day 15 -> 14)."""
    if study_day == 0:
        raise ValueError("there is no study day 0")
    return study_day - 1 if study_day > 0 else study_day


def study_day_at(offset: int) -> int:
    """The study day `offset` days after the anchor date (0 -> day 1, -1 -> day -1)."""
    return offset + 1 if offset >= 0 else offset


def study_day_of(anchor_date: date, on: date) -> int:
    """The study day of a calendar date, given the date of the anchor visit."""
    return study_day_at((on - anchor_date).days)


def date_of_study_day(anchor_date: date, study_day: int) -> date:
    """The calendar date of a study day, given the date of the anchor visit."""
    return anchor_date + timedelta(days=day_offset(study_day))


class VisitType(StrEnum):
    SCREENING = "screening"
    SCHEDULED = "scheduled"
    UNSCHEDULED = "unscheduled"
    END_OF_STUDY = "end_of_study"


def _days_away(days: int) -> int:
    if days < 0:
        raise ValueError(f"a window counts days away from the nominal day and cannot be negative, got {days}")
    return days


WindowDays = Annotated[int, Field(le=3650, json_schema_extra={"minimum": 0}), AfterValidator(_days_away)]


class Window(ProtocolModel):
    """Allowed calendar days before (`early`) and after (`late`) the nominal day: [day - early, day + late]."""

    early: WindowDays = 0
    late: WindowDays = 0


class Visit(ProtocolModel):
    """One visit of the schedule and the forms due at it.

    `day` is required for screening and scheduled visits; unscheduled visits have none, and an end of
    study visit may have one (a fixed follow-up) or not (at completion or early termination).
    """

    id: Identifier
    name: Text
    type: VisitType = VisitType.SCHEDULED
    day: StudyDay | None = None
    window: Window = Window()
    repeating: bool = False
    epoch: Identifier | None = None
    forms: tuple[Identifier, ...] = ()
    out_of_window: CheckAction = CheckAction.QUERY

    def window_days(self) -> tuple[int, int] | None:
        """The earliest and latest study day at which this visit is in window; None without a nominal day."""
        if self.day is None:
            return None
        nominal = day_offset(self.day)
        return study_day_at(nominal - self.window.early), study_day_at(nominal + self.window.late)

    def window_dates(self, anchor_date: date) -> tuple[date, date] | None:
        """The first and last calendar date of the window, given the date of the anchor visit."""
        days = self.window_days()
        if days is None:
            return None
        return date_of_study_day(anchor_date, days[0]), date_of_study_day(anchor_date, days[1])

    def is_in_window(self, anchor_date: date, visit_date: date) -> bool | None:
        """Whether a visit held on `visit_date` is in window; None when the visit has no nominal day."""
        dates = self.window_dates(anchor_date)
        if dates is None:
            return None
        return dates[0] <= visit_date <= dates[1]


class Schedule(ProtocolModel):
    """The visits of the study; `anchor` names the visit that defines study day 1.

    `log_forms` are collected at subject level, outside any visit (adverse events, medications).
    """

    anchor: Identifier
    visits: tuple[Visit, ...] = Field(min_length=1)
    log_forms: tuple[Identifier, ...] = ()

    def visit(self, visit_id: str) -> Visit | None:
        return next((visit for visit in self.visits if visit.id == visit_id), None)

    def visits_with_form(self, form_id: str) -> tuple[Visit, ...]:
        """The visits at which a form is due, in the order they are declared."""
        return tuple(visit for visit in self.visits if form_id in visit.forms)
