"""What runs inside a unit of work besides the append: projections and policy reactors (set in bootstrap.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, Table

from trialstack.clock import Clock
from trialstack.ledger.envelope import Actor, NewEvent, RecordedEvent


class Projection(Protocol):
    """A read model: tables it owns, the event types it reads, and how it folds a batch of them in.

    Projections are disposable: `rebuild` drops their tables and replays the ledger, so `apply` must depend on
    nothing but the events (no clock, no randomness, no other projection's tables).
    """

    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> Sequence[Table]: ...

    @property
    def event_types(self) -> frozenset[str]: ...

    def apply(self, connection: Connection, events: Sequence[RecordedEvent]) -> None: ...


ALL_EVENTS = frozenset({"*"})
"""Declare `event_types = ALL_EVENTS` for a projection that reads every event."""


def relevant_events(projection: Projection, events: Sequence[RecordedEvent]) -> Sequence[RecordedEvent]:
    if "*" in projection.event_types:
        return events
    return [e for e in events if e.event_type in projection.event_types]


class ReactionContext(Protocol):
    """What a policy reactor is handed: the unit of work's transaction, as far as a reaction may use it.

    `UnitOfWork` satisfies it; declaring it here keeps the wiring free of the unit of work, which imports it.
    """

    @property
    def connection(self) -> Connection: ...

    @property
    def clock(self) -> Clock: ...

    def read_stream(self, stream_type: str, stream_id: str, after_version: int = 0) -> list[RecordedEvent]: ...

    def stream_version(self, stream_type: str, stream_id: str) -> int: ...

    def caused_by(self, event: RecordedEvent) -> AbstractContextManager[None]:
        """Appends inside the block are reactions to `event` (their causation_id)."""
        ...

    def append(
        self,
        study_id: str,
        stream_type: str,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        actor: Actor | None = None,
    ) -> list[RecordedEvent]: ...


Reactor = Callable[[RecordedEvent, ReactionContext], None]
"""A policy: reads a new event and may append more in the same transaction (their causation is that event)."""

BatchReactor = Callable[[Sequence[RecordedEvent], ReactionContext], None]
"""A policy handed every new event of its types in one reaction round at once, for policies that look up read
models: one lookup per round instead of one per event (a lab import appends a million results in one unit).
It sets each reaction's causation with `ReactionContext.caused_by`."""


@dataclass
class LedgerWiring:
    projections: list[Projection] = field(default_factory=list)
    reactors: dict[str, list[Reactor]] = field(default_factory=dict)
    batch_reactors: list[tuple[frozenset[str], BatchReactor]] = field(default_factory=list)

    def add_projection(self, projection: Projection) -> None:
        if any(p.name == projection.name for p in self.projections):
            raise ValueError(f"projection {projection.name!r} is registered twice")
        self.projections.append(projection)

    def add_reactor(self, event_types: Sequence[str], reactor: Reactor) -> None:
        for event_type in event_types:
            self.reactors.setdefault(event_type, []).append(reactor)

    def add_batch_reactor(self, event_types: Sequence[str], reactor: BatchReactor) -> None:
        self.batch_reactors.append((frozenset(event_types), reactor))
