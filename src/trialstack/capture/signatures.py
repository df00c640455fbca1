"""Electronic signature of a casebook (21 CFR Part 11 §11.50, §11.70): a minimal SignCasebook / CasebookSigned
pair until capture grows its own FormSigned / CasebookSigned.

The signature binds the printed name, the meaning and the moment to what was signed: the subject stream's
version and the ledger hash of its last event (the hash chain covers everything before it). Signatures live in
their own stream (`signature`, `<study>/<subject>`), so the casebook fold never has to know them. A later data
change in the subject stream makes the signature visibly invalid; re-authenticating the signer is the adapter's
job (identity), before this handler runs, in the same unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection

from trialstack.capture.handlers import SUBJECT, load_casebook, study_rules
from trialstack.capture.model import Casebook
from trialstack.capture.refs import subject_stream_id
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import encode, event_type
from trialstack.ledger.uow import UnitOfWork

SIGNATURE = "signature"
CASEBOOK_MEANING = (
    "I have reviewed the data in this casebook and confirm that, to the best of my knowledge, "
    "they are accurate and complete."
)
DATA_EVENTS = frozenset(
    {
        "ItemValueEntered",
        "ItemValueChanged",
        "ItemMarkedNotDone",
        "ItemValueDerived",
        "VisitDateRecorded",
        "SubjectEnrolled",
        "SubjectScreenFailed",
        "SubjectWithdrawn",
        "SubjectCompleted",
    }
)
"""Events that change signed data; SDV, freezing, locking and edit-check bookkeeping do not."""


@event_type("capture")
class CasebookSigned(BaseModel):
    """The signer (re-authenticated) signed the casebook as it stood at `casebook_version` / `casebook_hash`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject_id: str
    signer: str
    printed_name: str
    meaning: str
    casebook_version: int
    casebook_hash: str
    study_version: str


@dataclass(frozen=True)
class SignCasebook:
    subject_id: str
    signer: str
    printed_name: str
    meaning: str = CASEBOOK_MEANING


def decide_sign(casebook: Casebook, command: SignCasebook, head_hash: str, version_hash: str) -> CasebookSigned:
    """Pure: sign what the casebook holds now; refuses an unknown subject, an empty casebook, an empty meaning."""
    if not casebook.exists:
        raise NotFound(f"subject {casebook.subject_id} does not exist", field="subject")
    if not casebook.forms:
        raise DomainRuleViolation(f"the casebook of {casebook.subject_id} holds no data to sign", field="subject")
    if not command.meaning.strip():
        raise InvalidInput("a signature states its meaning", field="meaning")
    if not command.printed_name.strip():
        raise InvalidInput("a signature shows the signer's printed name", field="printed_name")
    return CasebookSigned(
        subject_id=casebook.subject_id,
        signer=command.signer,
        printed_name=command.printed_name,
        meaning=command.meaning,
        casebook_version=casebook.version,
        casebook_hash=head_hash,
        study_version=version_hash,
    )


def signature_stream_id(study_id: str, subject_id: str) -> str:
    return f"{study_id}/{subject_id}"


def sign_casebook(uow: UnitOfWork, study_id: str, command: SignCasebook) -> list[RecordedEvent]:
    """Append CasebookSigned bound to the casebook's current head; the caller re-authenticated the signer."""
    rules = study_rules(uow, study_id)
    casebook = load_casebook(uow, study_id, command.subject_id)
    stream_id = subject_stream_id(study_id, command.subject_id)
    head = uow.read_stream(SUBJECT, stream_id, after_version=max(casebook.version - 1, 0))
    signed = decide_sign(casebook, command, head[-1].hash if head else "", rules.version_hash)
    own = signature_stream_id(study_id, command.subject_id)
    version = uow.stream_version(SIGNATURE, own)
    return uow.append(study_id, SIGNATURE, own, [encode(signed)], expected_version=version)


@dataclass(frozen=True)
class SignatureState:
    """The latest signature of a casebook, and whether data changed since (then it no longer stands)."""

    signer: str
    printed_name: str
    meaning: str
    signed_at: str
    casebook_version: int
    casebook_hash: str
    valid: bool
    changed_by: str | None = None


def latest_signature(connection: Connection, study_id: str, subject_id: str) -> SignatureState | None:
    events = store.read_stream(connection, SIGNATURE, signature_stream_id(study_id, subject_id))
    if not events:
        return None
    last = events[-1]
    payload = last.payload
    later = store.read_stream(
        connection, SUBJECT, subject_stream_id(study_id, subject_id), after_version=payload["casebook_version"]
    )
    change = next((e for e in later if e.event_type in DATA_EVENTS), None)
    return SignatureState(
        signer=payload["signer"],
        printed_name=payload["printed_name"],
        meaning=payload["meaning"],
        signed_at=last.recorded_at,
        casebook_version=payload["casebook_version"],
        casebook_hash=payload["casebook_hash"],
        valid=change is None,
        changed_by=f"{change.event_type} at {change.recorded_at}" if change is not None else None,
    )
