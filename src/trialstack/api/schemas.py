"""Request bodies of the API (Pydantic v2). Values are strings or integers: decimals travel as text."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What the OpenAPI document says of dates and form instances (capture/refs.py is the grammar); the handlers
# still check that a date is a real day and that the visit and form exist in the study.
FORM_PATTERN = r"^[A-Z][A-Z0-9_]*(\.[1-9][0-9]*)?\.[A-Z][A-Z0-9_]*$|^[A-Z][A-Z0-9_]*\.[1-9][0-9]*$"
VISIT_PATTERN = r"^[A-Z][A-Z0-9_]*(\.[1-9][0-9]*)?$"
DATE_FORMAT: dict[str, Any] = {"format": "date"}


def date_field(description: str = "ISO date (YYYY-MM-DD)") -> Any:
    return Field(description=description, json_schema_extra=DATE_FORMAT)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScreenRequest(Body):
    site_id: str = Field(min_length=1, max_length=20)
    screened_on: str = date_field()


class EnrolRequest(Body):
    enrolled_on: str = date_field()


class ScreenFailRequest(Body):
    failed_on: str = date_field()
    reason: str = Field(min_length=1)


class WithdrawRequest(Body):
    withdrawn_on: str = date_field()
    reason: str = Field(min_length=1)


class ErasureRequest(Body):
    reason: str = Field(min_length=1)


class CompleteRequest(Body):
    completed_on: str = date_field()


class VisitDateRequest(Body):
    visit_date: str = date_field()
    reason: str | None = None


class ItemEntry(Body):
    value: str | int | None = None
    unit: str | None = None
    not_done_reason: str | None = None
    reason_for_change: str | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _no_binary_floats(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError('send decimal values as strings ("37.5"), not JSON numbers with a fraction')
        return value


class SaveFormRequest(Body):
    items: dict[str, ItemEntry]
    reason: str | None = Field(default=None, description="Reason for change for every changed item without its own")


class SdvRequest(Body):
    items: list[str] = Field(default_factory=list)


class ReasonRequest(Body):
    reason: str = Field(min_length=1)


class OpenQueryRequest(Body):
    subject_id: str
    form: str = Field(pattern=FORM_PATTERN, description="A form instance: VISIT.FORM, VISIT.N.FORM or LOGFORM.N")
    item: str
    text: str = Field(min_length=1)


class TextRequest(Body):
    text: str = Field(min_length=1)


class CloseQueryRequest(Body):
    resolution: str = Field(min_length=1)


class SignRequest(Body):
    """Signing re-authenticates: the signer's password (and one-time code when TOTP is on) with the meaning."""

    password: str = Field(min_length=1)
    meaning: str = Field(min_length=1, examples=["I confirm the data in this casebook are accurate and complete."])
    form: str | None = Field(
        default=None, pattern=FORM_PATTERN, description="A form instance to sign; the whole casebook when absent"
    )
    totp: str | None = None
