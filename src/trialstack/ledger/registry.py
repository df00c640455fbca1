"""Event types known to the platform: owning context, payload model, and upcasters for old schema versions.

Each context's `events.py` registers its payload models with `@event_type("capture")`; reading an event
upcasts its stored payload step by step to the current schema version (old rows are never rewritten).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from trialstack.ledger.envelope import NewEvent, RecordedEvent
from trialstack.ledger.errors import LedgerError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
ModelT = TypeVar("ModelT", bound=type[BaseModel])


@dataclass
class EventTypeInfo:
    name: str
    context: str
    model: type[BaseModel]
    schema_version: int
    blinded: bool = False
    upcasters: dict[int, Upcaster] = field(default_factory=dict)


_EVENT_TYPES: dict[str, EventTypeInfo] = {}


def event_type(context: str, schema_version: int = 1, *, blinded: bool = False) -> Callable[[ModelT], ModelT]:
    """Register a payload model under its class name (past tense: `ItemValueEntered`).

    `blinded` marks events that reveal treatment (allocations, kit contents): only unblinded roles see them.
    """

    def register(model: ModelT) -> ModelT:
        name = model.__name__
        known = _EVENT_TYPES.get(name)
        if known is not None and known.model is not model:
            raise LedgerError(f"event type {name!r} is registered twice ({known.context} and {context})")
        _EVENT_TYPES[name] = EventTypeInfo(name, context, model, schema_version, blinded)
        return model

    return register


def upcaster(name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that lifts a payload of `from_version` to `from_version + 1`."""

    def register(function: Upcaster) -> Upcaster:
        _EVENT_TYPES[name].upcasters[from_version] = function
        return function

    return register


def context_of(name: str) -> str:
    info = _EVENT_TYPES.get(name)
    return info.context if info is not None else "unknown"


def is_blinded(name: str) -> bool:
    """Whether an event type reveals treatment; unknown types count as blinded (never leak what is not known)."""
    known = _EVENT_TYPES.get(name)
    return known is None or known.blinded


def info(name: str) -> EventTypeInfo:
    try:
        return _EVENT_TYPES[name]
    except KeyError:
        raise LedgerError(f"unknown event type {name!r}") from None


def decode(event: RecordedEvent) -> BaseModel:
    """The event's payload as its current model, upcast from the stored schema version when older."""
    known = info(event.event_type)
    payload = event.payload
    version = event.schema_version
    while version < known.schema_version:
        step = known.upcasters.get(version)
        if step is None:
            raise LedgerError(f"no upcaster for {event.event_type} v{version}")
        payload = step(payload)
        version += 1
    return known.model.model_validate(payload)


def encode(payload: BaseModel, **envelope: Any) -> NewEvent:
    """A NewEvent from a registered payload model (JSON mode: dates and decimals become strings)."""
    known = info(type(payload).__name__)
    return NewEvent(
        event_type=known.name,
        payload=payload.model_dump(mode="json"),
        schema_version=known.schema_version,
        **envelope,
    )
