"""A subject's consent, folded from their `consent` stream, and the decisions on it. Pure: time and codes are inputs.

`evolve(event, state)` folds; each `decide_*` returns the events a command produces or raises with the field at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from types import MappingProxyType

from trialstack.consent import commands as cmd
from trialstack.consent import events as ev
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.protocol.consent_text import Section, split_sections
from trialstack.protocol.definition import ConsentDocument, ConsentVersion, StudyDefinition
from trialstack.protocol.definition_consent import ConsentText, TextFormat

SIGNERS = ("participant", "legally_authorised_representative")
MAX_INVITATION_HOURS = 24 * 14
PARTICIPANT_MEANING = "I have read this information, my questions were answered, and I agree to take part."
COUNTERSIGN_MEANING = "I explained this study to the participant and obtained their consent."


class ConsentRequired(DomainRuleViolation):
    """A gated action before the consent it needs (first signature, re-consent, or after withdrawal)."""

    code = "consent-required"


class WrongAnswer(DomainRuleViolation):
    """A comprehension question answered wrongly: the participant goes back to `section`."""

    code = "comprehension-answer-wrong"

    def __init__(self, message: str, *, field: str, section: int) -> None:
        super().__init__(message, field=field)
        self.section = section


class InvitationRefused(DomainRuleViolation):
    code = "invitation-refused"


@dataclass(frozen=True)
class Invitation:
    invitation_id: str
    code_sha256: str
    expires_at: str
    language: str
    used: bool = False


@dataclass(frozen=True)
class DocumentConsent:
    """Where one document stands for the subject: the latest signature, re-consent due, withdrawal."""

    document_id: str
    signed_version: str | None = None
    signed_on: str | None = None
    electronic: bool = False
    signature: ev.ConsentSigned | None = None
    countersignature: ev.ConsentCountersigned | None = None
    choices: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    reconsent: ev.ReconsentRequired | None = None
    withdrawn_on: str | None = None
    continues: tuple[str, ...] = ()

    @property
    def consented(self) -> bool:
        return self.signed_version is not None and self.withdrawn_on is None

    @property
    def awaiting_countersignature(self) -> bool:
        return self.electronic and self.signature is not None and self.countersignature is None


@dataclass(frozen=True)
class ParticipantConsent:
    study_id: str
    subject_id: str
    site_id: str = ""
    invitations: Mapping[str, Invitation] = field(default_factory=lambda: MappingProxyType({}))
    username: str | None = None
    documents: Mapping[str, DocumentConsent] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0

    def document(self, document_id: str) -> DocumentConsent:
        return self.documents.get(document_id) or DocumentConsent(document_id)

    @property
    def latest_invitation(self) -> Invitation | None:
        return list(self.invitations.values())[-1] if self.invitations else None


def _with(state: ParticipantConsent, document: DocumentConsent) -> ParticipantConsent:
    return replace(state, documents=MappingProxyType({**state.documents, document.document_id: document}))


def _choices(choices: list[ev.PartChoice]) -> Mapping[str, bool]:
    return MappingProxyType({choice.part: choice.agreed for choice in choices})


def evolve(event: ev.ConsentEvent, state: ParticipantConsent) -> ParticipantConsent:
    match event:
        case ev.ParticipantInvited():
            invitation = Invitation(event.invitation_id, event.code_sha256, event.expires_at, event.language)
            invitations = MappingProxyType({**state.invitations, event.invitation_id: invitation})
            return replace(state, site_id=event.site_id, invitations=invitations)
        case ev.ParticipantActivated():
            used = replace(state.invitations[event.invitation_id], used=True)
            invitations = MappingProxyType({**state.invitations, event.invitation_id: used})
            return replace(state, invitations=invitations, username=event.username)
        case ev.ConsentSigned():
            document = state.document(event.document_id)
            return _with(
                replace(state, site_id=event.site_id),
                replace(
                    document, signed_version=event.version, signed_on=event.signed_at[:10], electronic=True,
                    signature=event, countersignature=None, choices=_choices(event.choices),
                    reconsent=_still_due(document.reconsent, event.version), withdrawn_on=None, continues=(),
                ),
            )  # fmt: skip
        case ev.ConsentCountersigned():
            return _with(state, replace(state.document(event.document_id), countersignature=event))
        case ev.ConsentRecordedOnPaper():
            document = state.document(event.document_id)
            return _with(
                replace(state, site_id=event.site_id),
                replace(
                    document, signed_version=event.version, signed_on=event.signed_on, electronic=False,
                    signature=None, countersignature=None, choices=_choices(event.choices),
                    reconsent=_still_due(document.reconsent, event.version), withdrawn_on=None, continues=(),
                ),
            )  # fmt: skip
        case ev.ConsentWithdrawn():
            document = state.document(event.document_id)
            if event.part is not None:
                return _with(
                    state, replace(document, choices=MappingProxyType({**document.choices, event.part: False}))
                )
            return _with(state, replace(document, withdrawn_on=event.withdrawn_on, continues=tuple(event.continues)))
        case ev.ReconsentRequired():
            return _with(state, replace(state.document(event.document_id), reconsent=event))
    return state


def _still_due(due: ev.ReconsentRequired | None, signed_version: str) -> ev.ReconsentRequired | None:
    return None if due is not None and due.version == signed_version else due


def fold(state: ParticipantConsent, events: list[ev.ConsentEvent]) -> ParticipantConsent:
    for event in events:
        state = evolve(event, state)
    return state


def consent_document(definition: StudyDefinition, document_id: str) -> ConsentDocument:
    document = definition.consent_document(document_id)
    if document is None:
        known = ", ".join(d.id for d in definition.consent) or "none"
        raise NotFound(f"no consent document {document_id!r} in this study (documents: {known})", field="document_id")
    return document


def version_in_force(document: ConsentDocument, site_id: str, day: date, label: str) -> ConsentVersion:
    """The version the command names, if it is the one in force at the site on `day`."""
    current = document.current_at(site_id, day)
    if current is None or current.version != label:
        in_force = current.version if current is not None else "none"
        raise DomainRuleViolation(
            f"version {label} of {document.id} is not in force at site {site_id} on {day.isoformat()} "
            f"(in force: {in_force})",
            field="version",
        )
    return current


def text_for(version: ConsentVersion, document: ConsentDocument, language: str) -> ConsentText:
    text = version.text_in(language)
    if text is None:
        languages = ", ".join(t.language for t in version.texts) or "none: this version is signed on paper"
        raise InvalidInput(
            f"{document.id} version {version.version} has no text in {language!r} (languages: {languages})",
            field="language",
        )
    return text


def sections_of(document: ConsentDocument, text: ConsentText) -> tuple[Section, ...]:
    return split_sections(text.text, document.title, html=text.format is TextFormat.HTML)


def decide_invite(
    state: ParticipantConsent,
    definition: StudyDefinition,
    command: cmd.InviteParticipant,
    site_id: str,
    invitation_id: str,
    code_sha256: str,
    now: datetime,
) -> list[ev.ConsentEvent]:
    if state.username is not None:
        raise DomainRuleViolation(
            f"subject {command.subject_id} already has a participant account ({state.username})", field="subject_id"
        )
    if not 1 <= command.valid_hours <= MAX_INVITATION_HOURS:
        raise InvalidInput(f"an invitation is valid for 1 to {MAX_INVITATION_HOURS} hours", field="valid_hours")
    electronic = [
        version
        for document in definition.consent
        if (version := document.current_at(site_id, now.date())) is not None and version.electronic
    ]
    if not electronic:
        raise DomainRuleViolation(
            f"no consent document has an electronic version in force at site {site_id}: record consent on paper",
            field="subject_id",
        )
    if not any(version.text_in(command.language) for version in electronic):
        raise InvalidInput(f"no consent text in force at site {site_id} is in {command.language!r}", field="language")
    expires = now.timestamp() + command.valid_hours * 3600
    return [
        ev.ParticipantInvited(
            subject_id=command.subject_id,
            site_id=site_id,
            invitation_id=invitation_id,
            code_sha256=code_sha256,
            expires_at=datetime.fromtimestamp(expires, tz=now.tzinfo).isoformat().replace("+00:00", "Z"),
            language=command.language,
        )
    ]


def decide_activate(state: ParticipantConsent, code_sha256: str, username: str, now: datetime) -> list[ev.ConsentEvent]:
    """The code must be the latest invitation's, unused and unexpired."""
    invitation = next((i for i in state.invitations.values() if i.code_sha256 == code_sha256), None)
    if invitation is None:
        raise InvitationRefused("the invitation code is not valid", field="code")
    if invitation.used or state.username is not None:
        raise InvitationRefused("this invitation code was already used; ask the site for a new one", field="code")
    if invitation is not state.latest_invitation:
        raise InvitationRefused("a newer invitation replaced this code; use the latest one", field="code")
    if datetime.fromisoformat(invitation.expires_at) <= now:
        raise InvitationRefused(f"the invitation expired at {invitation.expires_at}; ask the site", field="code")
    return [
        ev.ParticipantActivated(subject_id=state.subject_id, invitation_id=invitation.invitation_id, username=username)
    ]
