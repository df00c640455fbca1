"""Events of the ecoa context: one `ecoa` stream per subject (`<study>/<subject>`).

The names are part of the public event contract. Answers are the participant's own words and numbers: a site never
edits them (an error is handled as a note), so there is no "changed" event.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type

CONTEXT = "ecoa"


class EcoaEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    subject_id: str


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    item: str
    value: str


class ScoreValue(BaseModel):
    """A score's value as exact decimal text; None when more items were missing than the instrument allows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    score: str
    value: str | None
    missing: int


@event_type(CONTEXT)
class QuestionnaireSubmitted(EcoaEvent):
    """A completed instrument. `entry` is the visit (site tablet) or the diary day; `client_id` makes a resend
    idempotent; `completed_at` is the device's time (with its UTC offset), `received_at` the server's."""

    site_id: str
    instrument: str
    instrument_version: str
    entry: str
    client_id: str
    answers: list[Answer]
    completed_at: str
    received_at: str
    time_zone: str
    mode: str
    username: str
    study_version: str


@event_type(CONTEXT)
class QuestionnaireScored(EcoaEvent):
    instrument: str
    entry: str
    client_id: str
    scores: list[ScoreValue]


@event_type(CONTEXT)
class DiaryEntryMissed(EcoaEvent):
    """The window of a diary entry closed without a submission."""

    site_id: str
    instrument: str
    entry: str
    closed_at: str


@event_type(CONTEXT)
class ComplianceAlertRaised(EcoaEvent):
    """Fewer diary entries completed than the study's threshold over its period (e.g. < 80 % over 7 days)."""

    site_id: str
    instrument: str
    as_of: str
    expected: int
    completed: int
    percent: int
    threshold_percent: int


@event_type(CONTEXT)
class ClinicalAlertRaised(EcoaEvent):
    """An instrument's alert rule held on a submission; the investigator acknowledges it with a note."""

    site_id: str
    alert: str
    instrument: str
    entry: str
    client_id: str
    message: str


@event_type(CONTEXT)
class ClinicalAlertAcknowledged(EcoaEvent):
    alert: str
    client_id: str
    username: str
    note: str


@event_type(CONTEXT)
class ParticipantTimeZoneSet(EcoaEvent):
    """Diary windows are counted in this IANA time zone from now on (default: the site's)."""

    time_zone: str


ECOA_EVENTS: tuple[type[EcoaEvent], ...] = (
    QuestionnaireSubmitted,
    QuestionnaireScored,
    DiaryEntryMissed,
    ComplianceAlertRaised,
    ClinicalAlertRaised,
    ClinicalAlertAcknowledged,
    ParticipantTimeZoneSet,
)
