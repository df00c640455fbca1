"""The audit trail of a subject, a form or an item, read from the ledger: who, what (old → new), when, why, and
under which StudyVersion. Events that would unblind are dropped for blinded users before anything is decoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from trialstack.capture import personal
from trialstack.capture.handlers import SUBJECT
from trialstack.capture.refs import subject_stream_id
from trialstack.irt import handlers as irt
from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.errors import LedgerError
from trialstack.ledger.registry import decode, is_blinded
from trialstack.ledger.vault import Vault
from trialstack.protocol.readmodel import list_versions
from trialstack.queries.handlers import QUERY
from trialstack.queries.handlers import stream_id as query_stream_id
from trialstack.queries.readmodel import list_queries


@dataclass(frozen=True)
class AuditRow:
    study_seq: int
    recorded_at: str
    occurred_at: str
    actor: str
    role: str
    event_type: str
    what: str
    form: str | None
    item: str | None
    old: str | None
    new: str | None
    detail: str | None
    reason: str | None
    study_version: str | None
    hash: str


def _payloads(
    connection: Connection, vault: Vault, study_id: str, subject_id: str, events: list[RecordedEvent]
) -> dict[int, dict[str, Any]]:
    """Each payload as its current model (upcast from older schema versions), raw when the type is unknown, with
    personal values revealed from the vault (or shown as erased)."""
    models = {}
    raw: dict[int, dict[str, Any]] = {}
    for event in events:
        try:
            models[event.study_seq] = decode(event)
        except LedgerError:
            raw[event.study_seq] = event.payload
    owner = personal.vault_owner(study_id, subject_id)
    revealed = personal.reveal(connection, vault, owner, list(models.values()))
    return raw | {seq: model.model_dump(mode="json") for seq, model in zip(models, revealed, strict=True)}


def _change(kind: str, p: dict[str, Any]) -> tuple[str, str | None, str | None, str | None]:
    """A readable description, the old and new value where the event changes one, and any text it carries."""
    if kind in ("ItemValueEntered", "ItemValueChanged", "ItemValueDerived"):
        verb = {"ItemValueEntered": "entered", "ItemValueChanged": "changed", "ItemValueDerived": "derived"}[kind]
        return f"Value {verb}", p.get("previous_value"), p.get("value"), None
    if kind == "ItemMarkedNotDone":
        return "Marked not done", p.get("previous_value"), "not done", p.get("not_done_reason")
    if kind == "VisitDateRecorded":
        return f"Visit date of {p.get('visit')}", p.get("previous_date"), p.get("visit_date"), None
    if kind == "EditCheckFailed":
        return f"Edit check {p.get('check_id')} failed", None, None, p.get("message")
    if kind == "EditCheckResolved":
        return f"Edit check {p.get('check_id')} holds again", None, None, None
    if kind in ("SourceDataVerified", "SourceDataVerificationInvalidated"):
        verb = "verified" if kind == "SourceDataVerified" else "verification invalidated"
        return f"SDV {verb}", None, None, ", ".join(p.get("items", []))
    if kind.startswith("Query"):
        verb = {"QueryOpened": "opened", "QueryAnswered": "answered", "QueryRequeried": "re-queried"}.get(
            kind, kind.removeprefix("Query").lower()
        )
        return f"Query {p.get('query_id')} {verb}", None, None, p.get("text") or p.get("resolution")
    if kind == "CasebookSigned":
        what = "Casebook" if p.get("scope") in (None, "casebook") else f"Form {p.get('scope')}"
        return f"{what} signed by {p.get('printed_name')}", None, None, p.get("meaning")
    if kind == "SignatureInvalidated":
        return f"Signature {p.get('signature_id')} no longer valid", None, None, p.get("changed")
    if kind == "SubjectRandomized":
        return f"Randomized: number {p.get('number')}, stratum {p.get('stratum')}", None, None, None
    if kind == "TreatmentAllocated":
        return f"Allocated to {p.get('arm')} (number {p.get('number')})", None, None, None
    if kind == "KitDispensed":
        return f"Kit {p.get('kit')} dispensed at {p.get('visit')}", None, None, None
    if kind == "KitReturned":
        return (
            f"Kit {p.get('kit')} returned ({p.get('condition')})",
            None,
            None,
            f"units returned: {p.get('units_returned')}",
        )
    if kind == "EmergencyUnblinded":
        return f"Emergency unblinding by {p.get('username')} ({p.get('role')})", None, None, p.get("reason")
    if kind == "PersonalDataErased":
        return "Personal data erased", None, None, ", ".join(p.get("items", [])) or None
    details = ", ".join(f"{k}={v}" for k, v in p.items() if k not in ("subject_id", "study_version", "site_id"))
    return kind, None, None, details or None


def _in_force(published: list[tuple[int, str]], study_seq: int) -> str | None:
    """The StudyVersion in force when the event was recorded (events that do not name theirs)."""
    earlier = [version for seq, version in published if seq < study_seq]
    return earlier[-1] if earlier else None


def _streams(connection: Connection, study_id: str, subject_id: str) -> list[RecordedEvent]:
    """The subject's casebook, its queries, and its randomization, kits and unblinding (from the study's IRT
    streams, where each event names its subject)."""
    events = list(store.read_stream(connection, SUBJECT, subject_stream_id(study_id, subject_id)))
    for query in list_queries(connection, study_id, subject_id=subject_id):
        events += store.read_stream(connection, QUERY, query_stream_id(study_id, query["query_id"]))
    for stream in (irt.randomization_stream(study_id), irt.supply_stream(study_id)):
        events += [
            e for e in store.read_stream(connection, irt.IRT, stream) if e.payload.get("subject_id") == subject_id
        ]
    return sorted(events, key=lambda event: event.study_seq)


def audit_trail(
    connection: Connection,
    study_id: str,
    subject_id: str,
    *,
    vault: Vault,
    unblinded: bool,
    form: str | None = None,
    item: str | None = None,
) -> list[AuditRow]:
    """Every recorded change of the subject (casebook, signatures and queries), newest first, narrowed to a
    form instance and an item when asked."""
    published = [(v.study_seq, v.version_hash) for v in list_versions(connection, study_id)]
    rows: list[AuditRow] = []
    query_targets: dict[str, tuple[str, str]] = {}
    visible = [e for e in _streams(connection, study_id, subject_id) if unblinded or not is_blinded(e.event_type)]
    payloads = _payloads(connection, vault, study_id, subject_id, visible)
    for event in visible:
        payload = payloads[event.study_seq]
        if event.event_type == "QueryOpened":
            query_targets[payload["query_id"]] = (payload["form"], payload["item"])
        target_form, target_item = payload.get("form"), payload.get("item")
        if "query_id" in payload and payload["query_id"] in query_targets:
            target_form, target_item = query_targets[payload["query_id"]]
        items = payload.get("items") or ([target_item] if target_item else [])
        if form is not None and target_form != form:
            continue
        if item is not None and item not in items:
            continue
        what, old, new, detail = _change(event.event_type, payload)
        rows.append(
            AuditRow(
                study_seq=event.study_seq,
                recorded_at=event.recorded_at,
                occurred_at=event.occurred_at,
                actor=event.actor_id,
                role=event.actor_role,
                event_type=event.event_type,
                what=what,
                form=target_form,
                item=target_item,
                old=old,
                new=new,
                detail=detail,
                reason=event.reason,
                study_version=payload.get("study_version") or _in_force(published, event.study_seq),
                hash=event.hash,
            )
        )
    return list(reversed(rows))
