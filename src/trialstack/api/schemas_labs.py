"""Request and response bodies of the labs API (Pydantic v2; requests refuse unknown members)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from trialstack.api.schemas import Body

NO_NUL = r"^[^\x00]*$"
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=NO_NUL)]


class Assignment(Body):
    subject_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    visit: str | None = Field(default=None, min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]+$")
    remember: bool = False
    reason: Reason


class Rejection(Body):
    reason: Reason


class AlertConfirmation(Body):
    term: str | None = Field(default=None, min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")


class AlertDismissal(Body):
    reason: Reason


class ImportFingerprint(Body):
    """What makes two imports the same request for Idempotency-Key (the body travels raw)."""

    sha256: str
    source: str
    accept_valid: bool


class RefusedRow(BaseModel):
    location: str
    field: str | None
    reason: str


class ImportReport(BaseModel):
    source: str
    rows: int
    received: int
    corrected: int
    repeated: int
    unmatched: int
    graded: int
    alerts: int
    refused: int
    committed: bool
    errors: list[RefusedRow]


class Rows(BaseModel):
    """Read-model rows as stored (results, triage items, alerts)."""

    study_id: str
    count: int
    items: list[dict[str, Any]]


class Decision(BaseModel):
    id: str
    status: str
    events: int
