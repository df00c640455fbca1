"""Events of the consent context: one `consent` stream per subject (`<study>/<subject>`).

The names are part of the public event contract (stream, webhooks, exports). Names typed by participants,
representatives and witnesses are personal data: payloads carry a vault reference and a keyed hash, never the name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type
from trialstack.protocol.definition import GatedAction, StudyDefinition

CONTEXT = "consent"


class ConsentEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    subject_id: str


class SectionRead(BaseModel):
    """How long the signer spent on a section (seconds, as the participant app measured it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    section: int
    title: str
    seconds: int


class QuestionAnswered(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str
    answer: str
    attempts: int = 1


class PartChoice(BaseModel):
    """The Yes (`agreed`) or No given to an optional part of the document (biobank, genetic testing)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    part: str
    agreed: bool


@event_type(CONTEXT)
class ParticipantInvited(ConsentEvent):
    """Site staff invited the subject to the participant app; only the SHA-256 of the one-time code is kept."""

    site_id: str
    invitation_id: str
    code_sha256: str
    expires_at: str
    language: str


@event_type(CONTEXT)
class ParticipantActivated(ConsentEvent):
    invitation_id: str
    username: str


@event_type(CONTEXT)
class ConsentSigned(ConsentEvent):
    """The participant (or their legally authorised representative) signed a document version electronically.

    `copy_sha256` is the SHA-256 of the signed copy (PDF) as of this signature, kept in the vault.
    """

    site_id: str
    document_id: str
    version: str
    language: str
    document_sha256: str
    signed_by: str
    username: str
    printed_name_ref: str
    printed_name_hash: str
    representative_relationship: str | None = None
    witness_name_ref: str | None = None
    witness_name_hash: str | None = None
    signed_at: str
    meaning: str
    study_version: str
    sections_read: list[SectionRead]
    answers: list[QuestionAnswered]
    choices: list[PartChoice]
    copy_sha256: str


@event_type(CONTEXT)
class ConsentCountersigned(ConsentEvent):
    """The person obtaining consent signed after the participant; the copy now carries both signatures."""

    document_id: str
    version: str
    username: str
    printed_name: str
    role: str
    signed_at: str
    meaning: str
    copy_sha256: str


@event_type(CONTEXT)
class ConsentRecordedOnPaper(ConsentEvent):
    """Site staff recorded a consent signed on paper: the date, the version, and who obtained it."""

    site_id: str
    document_id: str
    version: str
    language: str
    signed_on: str
    obtained_by: str
    obtained_by_name: str
    choices: list[PartChoice]


@event_type(CONTEXT)
class ConsentWithdrawn(ConsentEvent):
    """Consent to the whole document (`part` None) or one optional part withdrawn; `continues` is what remains.

    `continues` may hold `safety_follow_up` (adverse events and follow-up of safety go on after a full withdrawal).
    """

    document_id: str
    part: str | None = None
    continues: list[str]
    withdrawn_on: str


@event_type(CONTEXT)
class ReconsentRequired(ConsentEvent):
    """An amendment published a consent version the subject must sign before the gated actions go on."""

    document_id: str
    version: str
    previous_version: str
    study_version: str
    required_on: str


CONSENT_EVENTS: tuple[type[ConsentEvent], ...] = (
    ParticipantInvited,
    ParticipantActivated,
    ConsentSigned,
    ConsentCountersigned,
    ConsentRecordedOnPaper,
    ConsentWithdrawn,
    ReconsentRequired,
)

SAFETY_FOLLOW_UP = "safety_follow_up"
CONTINUATIONS = frozenset({SAFETY_FOLLOW_UP})


@dataclass(frozen=True)
class DocumentView:
    signed_version: str | None = None
    reconsent_version: str | None = None
    reconsent_on: str | None = None
    withdrawn_on: str | None = None
    continues: frozenset[str] = frozenset()
    choices: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ConsentView:
    """A subject's consent as another context needs it for gating: per document, as of the last event it saw.

    Other contexts fold the subject's `consent` stream with `see` (they import only this module, DESIGN.md §4).
    """

    documents: Mapping[str, DocumentView] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0

    def document(self, document_id: str) -> DocumentView:
        return self.documents.get(document_id) or DocumentView()


def _signed(view: DocumentView, version: str, choices: list[PartChoice]) -> DocumentView:
    due = view.reconsent_version is not None and view.reconsent_version != version
    return DocumentView(
        signed_version=version,
        reconsent_version=view.reconsent_version if due else None,
        reconsent_on=view.reconsent_on if due else None,
        choices=MappingProxyType({c.part: c.agreed for c in choices}),
    )


def see(view: ConsentView, event: object) -> ConsentView:
    """Fold one consent event into the view (other events leave it as it is)."""
    if not isinstance(event, ConsentEvent) or not hasattr(event, "document_id"):
        return view
    document_id = str(event.document_id)
    current = view.document(document_id)
    match event:
        case ConsentSigned() | ConsentRecordedOnPaper():
            current = _signed(current, event.version, event.choices)
        case ReconsentRequired():
            current = replace(current, reconsent_version=event.version, reconsent_on=event.required_on)
        case ConsentWithdrawn() if event.part is not None:
            current = replace(current, choices=MappingProxyType({**current.choices, event.part: False}))
        case ConsentWithdrawn():
            current = replace(current, withdrawn_on=event.withdrawn_on, continues=frozenset(event.continues))
        case _:
            return view
    return replace(view, documents=MappingProxyType({**view.documents, document_id: current}))


def gate_refusal(definition: StudyDefinition, view: ConsentView, gate: GatedAction, day: date, what: str) -> str | None:
    """Why the subject's consent refuses `what` (a `gate`d action) on `day`, naming the document; None: allowed."""
    for document in definition.consent:
        if not document.required or gate not in document.gates:
            continue
        held = view.document(document.id)
        if held.signed_version is None:
            return f"{what} needs consent to {document.id} ({document.title}): it has not been signed"
        if held.withdrawn_on is not None:
            return f"{what} is refused: consent to {document.id} was withdrawn on {held.withdrawn_on}"
        if held.reconsent_version is not None and held.reconsent_on is not None and held.reconsent_on <= str(day):
            return (
                f"{what} is refused: re-consent to {document.id} version {held.reconsent_version} is required "
                f"since {held.reconsent_on}"
            )
    return None
