"""Events of the capture context (EDC). Every data event names the StudyVersion it was decided under.

Values of items the study marks `personal` never appear here: the handler seals them into the personal-data vault
and the event carries the vault reference in `value` / `previous_value` and a keyed hash in `value_hash` /
`previous_value_hash` (set exactly when the value is sealed), so the audit trail still shows each change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type

CONTEXT = "capture"


class CaptureEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@event_type(CONTEXT)
class SubjectScreened(CaptureEvent):
    subject_id: str
    site_id: str
    screened_on: str
    study_version: str


@event_type(CONTEXT)
class SubjectEnrolled(CaptureEvent):
    """All eligibility criteria held; `criteria` lists each criterion id that was evaluated."""

    subject_id: str
    enrolled_on: str
    criteria: list[str]
    study_version: str


@event_type(CONTEXT)
class SubjectScreenFailed(CaptureEvent):
    subject_id: str
    failed_on: str
    failed_criteria: list[str]
    study_version: str


@event_type(CONTEXT)
class SubjectWithdrawn(CaptureEvent):
    subject_id: str
    withdrawn_on: str


@event_type(CONTEXT)
class SubjectCompleted(CaptureEvent):
    subject_id: str
    completed_on: str


@event_type(CONTEXT)
class VisitDateRecorded(CaptureEvent):
    """A visit happened on `visit_date` (first entry or a correction: `previous_date` set)."""

    subject_id: str
    visit: str
    visit_date: str
    previous_date: str | None = None
    study_version: str


@event_type(CONTEXT)
class ItemValueEntered(CaptureEvent):
    """First entry of an item on a form instance."""

    subject_id: str
    form: str
    item: str
    value: str
    unit: str | None = None
    study_version: str
    value_hash: str | None = None


@event_type(CONTEXT)
class ItemValueChanged(CaptureEvent):
    """A change after first entry; the envelope's `reason` says why (Part 11)."""

    subject_id: str
    form: str
    item: str
    value: str | None
    previous_value: str | None
    unit: str | None = None
    study_version: str
    value_hash: str | None = None
    previous_value_hash: str | None = None


@event_type(CONTEXT)
class ItemMarkedNotDone(CaptureEvent):
    """The item was not collected; `not_done_reason` says why (replaces any value)."""

    subject_id: str
    form: str
    item: str
    not_done_reason: str
    previous_value: str | None = None
    study_version: str
    previous_value_hash: str | None = None


@event_type(CONTEXT)
class ItemValueDerived(CaptureEvent):
    """The system computed a derived item from its expression (None when it cannot be computed)."""

    subject_id: str
    form: str
    item: str
    value: str | None
    previous_value: str | None
    study_version: str


@event_type(CONTEXT)
class EditCheckFailed(CaptureEvent):
    """A check that held (or was never evaluated) no longer holds on this form instance."""

    subject_id: str
    site_id: str
    check_id: str
    form: str
    item: str
    message: str
    study_version: str


@event_type(CONTEXT)
class EditCheckResolved(CaptureEvent):
    """A failing check holds again (or can no longer be evaluated) after a correction."""

    subject_id: str
    site_id: str
    check_id: str
    form: str
    item: str
    study_version: str


@event_type(CONTEXT)
class SourceDataVerified(CaptureEvent):
    """A monitor verified items of a form instance against the source documents."""

    subject_id: str
    form: str
    items: list[str]
    form_complete: bool


@event_type(CONTEXT)
class SourceDataVerificationInvalidated(CaptureEvent):
    """Verified data changed afterwards; the items must be verified again."""

    subject_id: str
    form: str
    items: list[str]


@event_type(CONTEXT)
class FormFrozen(CaptureEvent):
    subject_id: str
    form: str


@event_type(CONTEXT)
class FormUnfrozen(CaptureEvent):
    subject_id: str
    form: str


@event_type(CONTEXT)
class CasebookLocked(CaptureEvent):
    subject_id: str


@event_type(CONTEXT)
class CasebookUnlocked(CaptureEvent):
    subject_id: str


@event_type(CONTEXT)
class CasebookSigned(CaptureEvent):
    """An electronic signature (21 CFR 11.50/11.70): who, printed name, when, what it means, and the SHA-256 of
    exactly what was signed; `scope` is "casebook" or one form instance."""

    subject_id: str
    signature_id: str
    scope: str
    meaning: str
    signer: str
    printed_name: str
    signed_at: str
    casebook_version: int
    content_hash: str


@event_type(CONTEXT)
class SignatureInvalidated(CaptureEvent):
    """Signed data changed afterwards: the signature no longer covers the record and must be given again."""

    subject_id: str
    signature_id: str
    scope: str
    changed: str


@event_type(CONTEXT)
class PersonalDataErased(CaptureEvent):
    """The subject's personal data was crypto-shredded (its vault key destroyed); `items` lists the form/item
    places that held personal values, now unrecoverable. The envelope's `reason` says why."""

    subject_id: str
    items: list[str]


@event_type(CONTEXT)
class StudyLocked(CaptureEvent):
    study_id: str


@event_type(CONTEXT)
class StudyUnlocked(CaptureEvent):
    study_id: str


SUBJECT_STATUS_AFTER: dict[str, str] = {
    SubjectScreened.__name__: "screening",
    SubjectEnrolled.__name__: "enrolled",
    SubjectScreenFailed.__name__: "screen_failed",
    SubjectWithdrawn.__name__: "withdrawn",
    SubjectCompleted.__name__: "completed",
}
"""The subject's status after each status event: what other contexts' read models follow of a subject."""
SUBJECT_FACT_EVENTS = frozenset({*SUBJECT_STATUS_AFTER, VisitDateRecorded.__name__})
"""Capture's events `follow_subject` keeps a row current with."""


def follow_subject(row: dict[str, Any] | None, kind: str, payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """Another context's read-model row of a subject, brought up to date with one of capture's events: made at
    screening (`site_id`, `status`, `visit_dates` as JSON), then its status and visit dates kept current. None for
    a subject the row was never made for."""
    if kind == SubjectScreened.__name__:
        return {**(row or {}), "site_id": payload["site_id"], "status": "screening", "visit_dates": "{}"}
    if row is None:
        return None
    if kind in SUBJECT_STATUS_AFTER:
        row["status"] = SUBJECT_STATUS_AFTER[kind]
    elif kind == VisitDateRecorded.__name__:
        dates = json.loads(row["visit_dates"])
        dates[payload["visit"]] = payload["visit_date"]
        row["visit_dates"] = json.dumps(dates, sort_keys=True)
    return row
