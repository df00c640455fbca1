"""One subject's stream folded into the record the clinical data export writes: the whole trail, not a snapshot.

Every entry, change, not-done mark and derivation of an item is an audit entry (who: the ledger actor; when:
the commit time; why: the envelope's reason, or what the system did), and so is every visit date. Visits,
forms and items come out in the order the definition declares them, so exports are stable. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from trialstack.capture import events as ev
from trialstack.capture.checks import WINDOW_ITEM
from trialstack.capture.model import ERASED
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import decode
from trialstack.protocol.definition import StudyDefinition
from trialstack.standards.clinical import (
    AuditEntry,
    FormRecord,
    ItemRecord,
    QueryRecord,
    SignatureRecord,
    SubjectRecord,
    VisitRecord,
)

DERIVED = "derived: computed by the system from the item's expression"
QueriesByTarget = Mapping[tuple[str, str], Sequence[QueryRecord]]
Reveal = Callable[[list[BaseModel]], list[BaseModel]]


def signature_definition_id(meaning: str) -> str:
    """A stable id for a signature meaning: the same words always give the same SignatureDef OID."""
    return "SD." + hashlib.sha256(meaning.encode("utf-8")).hexdigest()[:12].upper()


@dataclass
class _Trails:
    """What the fold collects: audit entries per visit date, per item of each form instance, and signatures."""

    dates: dict[VisitKey, list[AuditEntry]] = field(default_factory=dict)
    items: dict[FormKey, dict[str, list[AuditEntry]]] = field(default_factory=dict)
    signatures: dict[str, list[SignatureRecord]] = field(default_factory=dict)


def subject_record(
    definition: StudyDefinition,
    subject_id: str,
    site_id: str,
    events: Iterable[RecordedEvent],
    queries: QueriesByTarget | None = None,
    reveal: Reveal | None = None,
) -> SubjectRecord:
    """The subject's casebook with its full audit trail, queries and signatures, from its stream's events.

    `reveal` turns the vault references of personal values into the values (or ERASED); without it, an export
    carries the references.
    """
    trails = _Trails()
    recorded_events = list(events)
    payloads = [decode(recorded) for recorded in recorded_events]
    if reveal is not None:
        payloads = reveal(payloads)
    for payload, recorded in zip(payloads, recorded_events, strict=True):
        _fold(trails, payload, recorded, site_id)
    queries = queries or {}
    for target, item in queries:
        if item == WINDOW_ITEM:
            trails.dates.setdefault(VisitKey.parse(target), [])
        else:
            trails.items.setdefault(FormKey.parse(target), {}).setdefault(item, [])
    forms = {key: _form(definition, key, trail, queries, trails.signatures) for key, trail in trails.items.items()}
    for key in forms:
        if key.visit is not None:
            trails.dates.setdefault(key.visit, [])
    visits = [
        VisitRecord(
            visit_id=key.visit_id,
            forms=tuple(forms[form] for form in _in_order(definition, key, forms)),
            repeat=key.repeat or None,
            date=dates[-1].new_value if dates else None,
            date_audit=tuple(dates),
            date_queries=tuple(queries.get((str(key), WINDOW_ITEM), ())),
        )
        for key, dates in sorted(trails.dates.items(), key=lambda pair: _visit_order(definition, pair[0]))
    ]
    log_order = {form_id: n for n, form_id in enumerate(definition.schedule.log_forms)}
    logs = sorted((key for key in forms if key.is_log), key=lambda k: (log_order.get(k.form_id, len(log_order)), k))
    return SubjectRecord(
        subject_key=subject_id,
        site_id=site_id,
        visits=tuple(visits),
        log_forms=tuple(forms[key] for key in logs),
        signatures=tuple(trails.signatures.get("casebook", ())),
    )


def _fold(trails: _Trails, event: object, recorded: RecordedEvent, site_id: str) -> None:
    at = datetime.fromisoformat(recorded.recorded_at)

    def entry(old: str | None, new: str | None, reason: str | None) -> AuditEntry:
        return AuditEntry(recorded.actor_id, site_id, at, old, new, reason)

    def item_trail(form: str, item: str) -> list[AuditEntry]:
        return trails.items.setdefault(FormKey.parse(form), {}).setdefault(item, [])

    reason = recorded.reason
    if isinstance(event, ev.VisitDateRecorded):
        trails.dates.setdefault(VisitKey.parse(event.visit), []).append(
            entry(event.previous_date, event.visit_date, reason)
        )
    elif isinstance(event, ev.ItemValueEntered):
        item_trail(event.form, event.item).append(entry(None, event.value, reason))
    elif isinstance(event, ev.ItemValueChanged):
        item_trail(event.form, event.item).append(entry(event.previous_value, event.value, reason))
    elif isinstance(event, ev.ItemMarkedNotDone):
        why = f"not done: {event.not_done_reason}" + (f"; {reason}" if reason else "")
        item_trail(event.form, event.item).append(entry(event.previous_value, None, why))
    elif isinstance(event, ev.ItemValueDerived):
        item_trail(event.form, event.item).append(entry(event.previous_value, event.value, reason or DERIVED))
    elif isinstance(event, ev.PersonalDataErased):
        why = "personal data erased" + (f": {reason}" if reason else "")
        for place in event.items:
            form, item = place.rsplit("/", 1)
            item_trail(form, item).append(entry(ERASED, ERASED, why))
    elif isinstance(event, ev.CasebookSigned):
        signed = SignatureRecord(
            signature_definition_id(event.meaning), event.signer, site_id, datetime.fromisoformat(event.signed_at)
        )
        trails.signatures.setdefault(event.scope, []).append(signed)


def _form(
    definition: StudyDefinition,
    key: FormKey,
    trail: dict[str, list[AuditEntry]],
    queries: QueriesByTarget,
    signatures: Mapping[str, list[SignatureRecord]],
) -> FormRecord:
    form = definition.form(key.form_id)
    declared = [item.id for item in form.items] if form is not None else []
    order = {item_id: n for n, item_id in enumerate(declared)}
    items = tuple(
        ItemRecord(
            item_id=item_id,
            value=entries[-1].new_value if entries else None,
            audit=tuple(entries),
            queries=tuple(queries.get((str(key), item_id), ())),
        )
        for item_id, entries in sorted(trail.items(), key=lambda pair: (order.get(pair[0], len(order)), pair[0]))
    )
    return FormRecord(
        form_id=key.form_id,
        items=items,
        repeat=key.record or None,
        signatures=tuple(signatures.get(str(key), ())),
    )


def _visit_order(definition: StudyDefinition, key: VisitKey) -> tuple[int, VisitKey]:
    ids = [visit.id for visit in definition.schedule.visits]
    return (ids.index(key.visit_id) if key.visit_id in ids else len(ids), key)


def _in_order(definition: StudyDefinition, visit: VisitKey, forms: Mapping[FormKey, FormRecord]) -> list[FormKey]:
    """The form instances at `visit`, in the order the visit lists its forms."""
    declared = definition.visit(visit.visit_id)
    order = {form_id: n for n, form_id in enumerate(declared.forms if declared is not None else ())}
    at_visit = [key for key in forms if key.visit == visit]
    return sorted(at_visit, key=lambda key: (order.get(key.form_id, len(order)), key))
