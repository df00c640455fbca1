"""Personal item values in and out of the vault: sealed before they are appended, revealed when a casebook folds.

`decide` works on plain values (checks and derivations read a date of birth like any date); this adapter-side
step is the only place that knows the vault. Sealing follows the StudyVersion in force (`StudyRules.personal`);
revealing follows the events themselves (a value is sealed exactly when its hash field is set), so a casebook
folds the same whatever version marked the item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection

from trialstack.capture import events as ev
from trialstack.capture.model import ERASED
from trialstack.capture.refs import FormKey
from trialstack.ledger.vault import Vault, subject_owner

SEALED_FIELDS: dict[type[BaseModel], tuple[tuple[str, str], ...]] = {
    ev.ItemValueEntered: (("value", "value_hash"),),
    ev.ItemValueChanged: (("value", "value_hash"), ("previous_value", "previous_value_hash")),
    ev.ItemMarkedNotDone: (("previous_value", "previous_value_hash"),),
}
"""Per event type, the (value field, keyed-hash field) pairs that hold a reference when the value is personal."""

EventT = TypeVar("EventT", bound=BaseModel)


def vault_owner(study_id: str, subject_id: str) -> str:
    return subject_owner(study_id, subject_id)


def _personal_fields(event: BaseModel, personal: frozenset[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    fields = SEALED_FIELDS.get(type(event), ())
    if not isinstance(event, ev.ItemValueEntered | ev.ItemValueChanged | ev.ItemMarkedNotDone):
        return ()
    if (FormKey.parse(event.form).form_id, event.item) not in personal:
        return ()
    return tuple((name, digest) for name, digest in fields if getattr(event, name) is not None)


def seal(
    connection: Connection,
    vault: Vault,
    owner: str,
    personal: frozenset[tuple[str, str]],
    events: Sequence[EventT],
    at: str,
) -> list[EventT]:
    """The events with every personal value (new and previous) replaced by its vault reference and keyed hash."""
    if not personal:
        return list(events)
    plan = [(event, _personal_fields(event, personal)) for event in events]
    plain = [str(getattr(event, name)) for event, fields in plan for name, _ in fields]
    if not plain:
        return list(events)
    sealed = iter(vault.seal(connection, owner, plain, at))
    out: list[EventT] = []
    for event, fields in plan:
        update: dict[str, str] = {}
        for name, digest in fields:
            stored = next(sealed)
            update |= {name: stored.ref, digest: stored.digest}
        out.append(event.model_copy(update=update) if update else event)
    return out


def sealed_refs(event: BaseModel) -> list[str]:
    """The vault references an event carries (empty for every event that holds no personal value)."""
    return [str(getattr(event, name)) for name, digest in SEALED_FIELDS.get(type(event), ()) if getattr(event, digest)]


def reveal(connection: Connection, vault: Vault, owner: str, events: Sequence[EventT]) -> list[EventT]:
    """The events with references replaced by the values they seal, or by ERASED after erasure."""
    refs = [ref for event in events for ref in sealed_refs(event)]
    if not refs:
        return list(events)
    values = vault.reveal(connection, owner, refs)
    out: list[EventT] = []
    for event in events:
        fields = SEALED_FIELDS.get(type(event), ())
        update = {
            name: values.get(str(getattr(event, name))) or ERASED for name, digest in fields if getattr(event, digest)
        }
        out.append(event.model_copy(update=update) if update else event)
    return out
