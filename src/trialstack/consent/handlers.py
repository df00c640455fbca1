"""Consent use cases: load the subject's consent stream and the StudyVersion in force, decide, append.

Handlers do not commit (the adapter's unit of work does). Adapters resolve the subject's site and authorize first;
opening the participant's account on activation is identity's handler, called by the adapter in the same unit.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from trialstack.clock import utc_timestamp
from trialstack.consent import commands as cmd
from trialstack.consent import copies, signing
from trialstack.consent import events as ev
from trialstack.consent.model import (
    InvitationRefused,
    ParticipantConsent,
    decide_activate,
    decide_invite,
    evolve,
)
from trialstack.consent.readmodel import ON_STUDY, consent_subject, invitation_for_code, subjects_on_study
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.registry import decode, encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.ledger.vault import Vault, subject_owner
from trialstack.ledger.wiring import ReactionContext
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.events import StudyVersionPublished
from trialstack.protocol.readmodel import version_by_hash, version_in_force
from trialstack.protocol.version import StudyVersion

CONSENT = "consent"
SYSTEM_CONSENT = Actor(id="system:consent", role="system")
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def stream_id(study_id: str, subject_id: str) -> str:
    return f"{study_id}/{subject_id}"


def code_sha256(code: str) -> str:
    """Codes are compared without dashes, spaces or case, as people type them from a printed slip."""
    normalized = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normalized.encode("ascii", errors="replace")).hexdigest()


def new_invitation_code() -> str:
    """12 characters from 32 unambiguous symbols (60 bits), shown as XXXX-XXXX-XXXX."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _fold(state: ParticipantConsent, events: Sequence[RecordedEvent]) -> ParticipantConsent:
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, ev.ConsentEvent):
            state = evolve(payload, state)
    return replace(state, version=events[-1].stream_version) if events else state


def load_consent(uow: ReactionContext, study_id: str, subject_id: str) -> ParticipantConsent:
    state = ParticipantConsent(study_id, subject_id)
    return _fold(state, uow.read_stream(CONSENT, stream_id(study_id, subject_id)))


def _version(uow: UnitOfWork, study_id: str) -> StudyVersion:
    version = version_in_force(uow.connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version


def _append(
    uow: UnitOfWork, state: ParticipantConsent, events: Sequence[ev.ConsentEvent], reason: str | None = None
) -> list[RecordedEvent]:
    return uow.append(
        state.study_id, CONSENT, stream_id(state.study_id, state.subject_id),
        [encode(event, reason=reason) for event in events], expected_version=state.version,
    )  # fmt: skip


@dataclass(frozen=True)
class Invited:
    code: str
    """Shown once to the site (to hand to the participant); only its SHA-256 is kept."""
    events: list[RecordedEvent]


def _on_study(uow: UnitOfWork, study_id: str, subject_id: str) -> None:
    row = consent_subject(uow.connection, study_id, subject_id)
    if row is None:
        raise NotFound(f"subject {subject_id} not found in study {study_id}", field="subject_id")
    if row.status not in ON_STUDY:
        raise DomainRuleViolation(f"subject {subject_id} is {row.status.replace('_', ' ')}", field="subject_id")


def invite_participant(uow: UnitOfWork, study_id: str, site_id: str, command: cmd.InviteParticipant) -> Invited:
    _on_study(uow, study_id, command.subject_id)
    state = load_consent(uow, study_id, command.subject_id)
    code = new_invitation_code()
    decided = decide_invite(
        state, _version(uow, study_id).definition, command, site_id, uuid.uuid4().hex[:16], code_sha256(code),
        uow.clock.now(),
    )  # fmt: skip
    return Invited(code, _append(uow, state, decided))


@dataclass(frozen=True)
class Activation:
    study_id: str
    site_id: str
    subject_id: str
    events: list[RecordedEvent]


def activate_participant(uow: UnitOfWork, command: cmd.ActivateParticipant) -> Activation:
    """Check the code and record the activation; the adapter then opens the account (identity) in this unit."""
    found = invitation_for_code(uow.connection, code_sha256(command.code))
    if found is None:
        raise InvitationRefused("the invitation code is not valid", field="code")
    study_id, subject_id = found
    state = load_consent(uow, study_id, subject_id)
    decided = decide_activate(state, code_sha256(command.code), command.username, uow.clock.now())
    return Activation(study_id, state.site_id, subject_id, _append(uow, state, decided))


def _names(uow: UnitOfWork, owner: str, refs: Sequence[str | None]) -> dict[str, str | None]:
    return uow.vault.reveal(uow.connection, owner, [ref for ref in refs if ref is not None])


def sign_consent(uow: UnitOfWork, study_id: str, username: str, command: cmd.SignConsent) -> list[RecordedEvent]:
    """The adapter re-authenticated the participant in this unit; the typed names go to the vault, the copy too."""
    state = load_consent(uow, study_id, command.subject_id)
    version = _version(uow, study_id)
    owner, at = subject_owner(study_id, command.subject_id), utc_timestamp(uow.clock.now())
    typed = [command.printed_name.strip(), (command.witness_name or "").strip()]
    if not typed[0]:
        raise InvalidInput("type your full name to sign", field="printed_name")
    sealed = uow.vault.seal(uow.connection, owner, [name for name in typed if name], at)
    witness = (sealed[1].ref, sealed[1].digest) if len(sealed) > 1 else None
    event = signing.decide_sign(
        state, version.definition, version.hash, command, username, (sealed[0].ref, sealed[0].digest), witness,
        uow.clock.now(),
    )  # fmt: skip
    names = {sealed[0].ref: typed[0], **({sealed[1].ref: typed[1]} if witness else {})}
    pdf = copies.render(version.definition, event, dict(names))
    event = event.model_copy(update={"copy_sha256": uow.vault.store_document(uow.connection, owner, pdf, at)})
    return _append(uow, state, [event])


def countersign_consent(
    uow: UnitOfWork, study_id: str, username: str, printed_name: str, role: str, command: cmd.CountersignConsent
) -> list[RecordedEvent]:
    """The person obtaining consent signs (re-authenticated by the adapter); the copy gains their signature."""
    state = load_consent(uow, study_id, command.subject_id)
    event = signing.decide_countersign(state, command, username, printed_name, role, uow.clock.now())
    signature = state.document(command.document_id).signature
    if signature is None:  # decide refused already; keeps the type checker sure
        raise NotFound(f"{command.document_id} has no signature", field="document_id")
    owner, at = subject_owner(study_id, command.subject_id), utc_timestamp(uow.clock.now())
    definition = _signed_under(uow.connection, study_id, signature)
    names = _names(uow, owner, [signature.printed_name_ref, signature.witness_name_ref])
    pdf = copies.render(definition, signature, names, event)
    event = event.model_copy(update={"copy_sha256": uow.vault.store_document(uow.connection, owner, pdf, at)})
    return _append(uow, state, [event])


def _signed_under(connection: Connection, study_id: str, signature: ev.ConsentSigned) -> StudyDefinition:
    """The definition the signature was decided under (its text is what was signed)."""
    version = version_by_hash(connection, study_id, signature.study_version)
    if version is None:
        raise NotFound(f"the StudyVersion {signature.study_version[:12]} of this signature is not loaded")
    return version.definition


def record_paper_consent(
    uow: UnitOfWork, study_id: str, site_id: str, obtained_by: tuple[str, str], command: cmd.RecordPaperConsent
) -> list[RecordedEvent]:
    _on_study(uow, study_id, command.subject_id)
    state = load_consent(uow, study_id, command.subject_id)
    definition = _version(uow, study_id).definition
    decided = signing.decide_record_paper(state, definition, command, site_id, obtained_by, uow.clock.now().date())
    return _append(uow, state, decided)


def withdraw_consent(uow: UnitOfWork, study_id: str, command: cmd.WithdrawConsent) -> list[RecordedEvent]:
    state = load_consent(uow, study_id, command.subject_id)
    definition = _version(uow, study_id).definition
    decided = signing.decide_withdraw(state, definition, command, uow.clock.now().date())
    return _append(uow, state, decided, command.reason)


def read_consent(connection: Connection, study_id: str, subject_id: str) -> ParticipantConsent:
    """The subject's consent from committed events (pages and downloads, outside a unit of work)."""
    events = store.read_stream(connection, CONSENT, stream_id(study_id, subject_id))
    return _fold(ParticipantConsent(study_id, subject_id), events)


def signed_copy_pdf(connection: Connection, vault: Vault, study_id: str, subject_id: str, sha256: str) -> bytes:
    """A stored signed copy by its SHA-256 (the one in a ConsentSigned or ConsentCountersigned event)."""
    content = vault.fetch_document(connection, subject_owner(study_id, subject_id), sha256)
    if content is None:
        raise NotFound(f"no signed copy {sha256[:12]} for subject {subject_id} (unknown or erased)", field="sha256")
    return content


def render_from_ledger(
    connection: Connection, vault: Vault, study_id: str, subject_id: str, document_id: str
) -> tuple[bytes, str]:
    """Render the latest signed copy of a document again from the ledger; returns it and the hash its event holds."""
    document = read_consent(connection, study_id, subject_id).document(document_id)
    signature = document.signature
    if signature is None:
        raise NotFound(f"{document_id} has no electronic signature for {subject_id}", field="document_id")
    definition = _signed_under(connection, study_id, signature)
    owner = subject_owner(study_id, subject_id)
    refs = [ref for ref in (signature.printed_name_ref, signature.witness_name_ref) if ref is not None]
    names = vault.reveal(connection, owner, refs)
    counter = document.countersignature
    pdf = copies.render(definition, signature, names, counter)
    return pdf, (counter.copy_sha256 if counter is not None else signature.copy_sha256)


def on_study_version_published(event: RecordedEvent, uow: ReactionContext) -> None:
    """Policy: a new consent version that asks for re-consent appends ReconsentRequired to each subject it covers.

    Runs in the publishing transaction, before the read models move: `version_in_force` is still the old version.
    """
    published = decode(event)
    if not isinstance(published, StudyVersionPublished):
        return
    previous = version_in_force(uow.connection, published.study_id)
    if previous is None:
        return
    new = StudyDefinition.model_validate(published.definition)
    today = uow.clock.now().date()
    subjects = None
    for document in new.consent:
        known = previous.definition.consent_document(document.id)
        old_labels = {v.version for v in known.versions} if known is not None else set()
        for version in document.versions:
            scope = document.reconsent_of(version)
            if version.version in old_labels or scope is None:
                continue
            subjects = subjects if subjects is not None else subjects_on_study(uow.connection, published.study_id)
            epochs = {visit.id: visit.epoch for visit in new.schedule.visits}
            for subject in subjects:
                if not version.applies_at(subject.site_id) or (scope.sites and subject.site_id not in scope.sites):
                    continue
                if scope.epochs and epochs.get((subject.last_visit or "").split(".")[0]) not in scope.epochs:
                    continue
                state = load_consent(uow, published.study_id, subject.subject_id)
                decided = signing.decide_reconsent(state, document, version, published.version_hash, today)
                if decided:
                    uow.append(
                        published.study_id, CONSENT, stream_id(published.study_id, subject.subject_id),
                        [encode(e) for e in decided], expected_version=state.version, actor=SYSTEM_CONSENT,
                    )  # fmt: skip


REACTORS = {StudyVersionPublished.__name__: on_study_version_published}
