"""Request bodies of the consent API (Pydantic v2, unknown members refused like every other body)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from trialstack.api.schemas import Body, date_field
from trialstack.consent.model import MAX_INVITATION_HOURS

LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Z]{2})?$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
Language = Annotated[str, Field(pattern=LANGUAGE_PATTERN, description="A language tag: en, es, pt-BR")]
DocumentId = Annotated[str, Field(min_length=1, max_length=64, description="A consent document of the study (ICF)")]
VersionLabel = Annotated[str, Field(min_length=1, max_length=40, description="The document version, e.g. 1.0")]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Totp = Annotated[
    str | None, Field(default=None, max_length=10, description="The one-time code, when the account has one")
]
PartId = Annotated[str, Field(min_length=1, max_length=64)]
Section = Annotated[int, Field(ge=1, le=1000)]
Seconds = Annotated[int, Field(ge=0, le=7 * 24 * 3600)]


class InvitationRequest(Body):
    """Invite the subject to the participant app; the answer shows the one-time code once."""

    language: Language = "en"
    valid_hours: int = Field(default=72, ge=1, le=MAX_INVITATION_HOURS)


class ActivationRequest(Body):
    """The participant's first visit: the code from the site's slip and the account they choose."""

    code: str = Field(min_length=1, max_length=64, description="The one-time code (dashes, spaces and case ignored)")
    username: str = Field(min_length=3, max_length=64, description="3-64 lower-case letters, digits, '.', '_', '-'")
    password: Password


class SignatureRequest(Body):
    """The participant's electronic signature: re-authentication, the reading record, the answers and choices."""

    document_id: DocumentId
    version: VersionLabel
    language: Language
    printed_name: str = Field(min_length=1, max_length=200, description="The signer's full name, as typed")
    password: Password
    totp: Totp = None
    sections_read: dict[Section, Seconds] = Field(description="Section number → seconds spent reading it")
    answers: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=1000)]] = Field(
        description="Comprehension question id → the option chosen"
    )
    attempts: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=1, le=100)]] = Field(
        default_factory=dict, description="Question id → how many tries the participant needed"
    )
    choices: dict[PartId, bool] = Field(default_factory=dict, description="Optional part → Yes (true) or No")
    signed_by: Literal["participant", "legally_authorised_representative"] = "participant"
    representative_relationship: str | None = Field(default=None, max_length=100)
    witness_name: str | None = Field(default=None, max_length=200, description="An impartial witness, if one attended")


class CountersignatureRequest(Body):
    """The person obtaining consent signs after the participant (re-authenticated)."""

    document_id: DocumentId
    password: Password
    totp: Totp = None


class PaperConsentRequest(Body):
    """A consent signed on paper at the site: the version, the date and the optional parts."""

    document_id: DocumentId
    version: VersionLabel
    signed_on: str = date_field()
    language: Language = "en"
    choices: dict[PartId, bool] = Field(default_factory=dict)


class ConsentWithdrawalRequest(Body):
    """Withdraw consent to the whole document, or only to an optional `part`."""

    document_id: DocumentId
    part: PartId | None = None
    continues: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=10, description="What goes on after a full withdrawal: safety_follow_up"
    )
    withdrawn_on: str = date_field()
    reason: str = Field(min_length=1, max_length=2000)
