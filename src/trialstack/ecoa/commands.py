"""Commands of the ecoa context."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SubmitQuestionnaire:
    """`completed_at`: the device's ISO time with offset; `mode`: `participant` (own phone) or `site_tablet`."""

    subject_id: str
    instrument: str
    entry: str
    client_id: str
    answers: dict[str, str]
    completed_at: str
    mode: str = "participant"


@dataclass(frozen=True)
class AcknowledgeClinicalAlert:
    subject_id: str
    alert: str
    client_id: str
    note: str


@dataclass(frozen=True)
class SetTimeZone:
    subject_id: str
    time_zone: str
