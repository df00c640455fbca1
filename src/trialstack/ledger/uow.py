"""The unit of work: one database transaction for append + reactors + projections (DESIGN.md §1).

The outbox is the ledger itself (see outbox.py), so committing the events is committing the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy import Connection, Engine

from trialstack.clock import Clock, utc_timestamp
from trialstack.errors import TrialStackError
from trialstack.ledger import store
from trialstack.ledger.cache import StreamStateCache
from trialstack.ledger.canonical import canonical_payload
from trialstack.ledger.chain import chain_hash, envelope_bytes
from trialstack.ledger.database import WRITE_OPTION
from trialstack.ledger.envelope import Actor, NewEvent, RecordedEvent
from trialstack.ledger.errors import ConcurrencyConflict, LedgerError
from trialstack.ledger.wiring import LedgerWiring, relevant_events

MAX_REACTION_ROUNDS = 20


class UnitOfWork:
    """Open with `with UnitOfWork(...) as uow:`; `commit()` runs policies and projections then commits.

    Leaving the block without `commit()` (or on any exception) rolls everything back: no event, read-model row
    survives, and no relay ever sees it.
    """

    def __init__(
        self,
        engine: Engine,
        wiring: LedgerWiring,
        clock: Clock,
        actor: Actor,
        correlation_id: str | None = None,
        cache: StreamStateCache | None = None,
    ) -> None:
        self._engine = engine
        self.cache = cache or StreamStateCache(capacity=64)
        self._wiring = wiring
        self._clock = clock
        self.actor = actor
        self.correlation_id = correlation_id or str(uuid.uuid4())
        self._heads: dict[str, tuple[int, str]] = {}
        self._versions: dict[tuple[str, str], int] = {}
        self._new: list[RecordedEvent] = []
        self._settled = 0
        self._cause: RecordedEvent | None = None
        self._connection: Connection | None = None
        self._committed = False

    def __enter__(self) -> UnitOfWork:
        self._connection = self._engine.connect().execution_options(**{WRITE_OPTION: True})
        self._connection.begin()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        connection = self.connection
        try:
            if not self._committed:
                connection.rollback()
        finally:
            connection.close()
            self._connection = None

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise LedgerError("the unit of work is not open")
        return self._connection

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def new_events(self) -> list[RecordedEvent]:
        """Events appended in this unit so far, in order (policy reactions included after commit)."""
        return list(self._new)

    def read_stream(self, stream_type: str, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        return store.read_stream(self.connection, stream_type, stream_id, after_version)

    def stream_version(self, stream_type: str, stream_id: str) -> int:
        key = (stream_type, stream_id)
        if key not in self._versions:
            self._versions[key] = store.current_stream_version(self.connection, stream_type, stream_id)
        return self._versions[key]

    def append(
        self,
        study_id: str,
        stream_type: str,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        actor: Actor | None = None,
    ) -> list[RecordedEvent]:
        """Append events to one stream; `expected_version` None skips the optimistic check (inbound feeds).

        A NewEvent whose `(source, external_id)` is already in the ledger is a repeat: nothing is written for it
        and the stored event is returned in its place.
        """
        connection = self.connection
        if study_id not in self._heads:
            self._heads[study_id] = store.lock_study_head(connection, study_id)
        seq, prev = self._heads[study_id]
        version = self.stream_version(stream_type, stream_id)
        if expected_version is not None and expected_version != version:
            raise ConcurrencyConflict(stream_type, stream_id, expected_version, version)
        who = actor or self.actor
        causation = self._cause.event_ref if self._cause is not None else None
        recorded_at = utc_timestamp(self._clock.now())
        result: list[RecordedEvent] = []
        fresh: list[RecordedEvent] = []
        seen: set[tuple[str, str]] = set()
        for new in events:
            if new.source is not None and new.external_id is not None:
                key = (new.source, new.external_id)
                repeat = None if key in seen else store.find_by_external_id(connection, *key)
                if key in seen:
                    raise LedgerError(f"external id {key!r} appears twice in one append")
                seen.add(key)
                if repeat is not None:
                    result.append(repeat)
                    continue
            seq += 1
            version += 1
            event = self._record(new, study_id, seq, stream_type, stream_id, version, who, causation, prev, recorded_at)
            prev = event.hash
            fresh.append(event)
        store.insert_events(connection, [e[1:] for e in fresh])
        self._heads[study_id] = (seq, prev)
        self._versions[(stream_type, stream_id)] = version
        self._new.extend(fresh)
        result.extend(fresh)
        return result

    def _record(
        self,
        new: NewEvent,
        study_id: str,
        seq: int,
        stream_type: str,
        stream_id: str,
        version: int,
        who: Actor,
        causation: str | None,
        prev: str,
        recorded_at: str,
    ) -> RecordedEvent:
        payload_json = canonical_payload(new.payload)
        occurred_at = utc_timestamp(new.occurred_at) if new.occurred_at is not None else recorded_at
        digest = chain_hash(
            prev,
            envelope_bytes(
                study_id=study_id,
                study_seq=seq,
                stream_type=stream_type,
                stream_id=stream_id,
                stream_version=version,
                event_type=new.event_type,
                schema_version=new.schema_version,
                payload_json=payload_json,
                actor_id=who.id,
                actor_role=who.role,
                on_behalf_of=who.on_behalf_of,
                reason=new.reason,
                occurred_at=occurred_at,
                recorded_at=recorded_at,
                source=new.source,
                external_id=new.external_id,
                correlation_id=self.correlation_id,
                causation_id=causation,
                prev_hash=prev,
            ),
        )
        return RecordedEvent(
            None, study_id, seq, stream_type, stream_id, version, new.event_type, new.schema_version, payload_json,
            who.id, who.role, who.on_behalf_of, new.reason, occurred_at, recorded_at, new.source, new.external_id,
            self.correlation_id, causation, prev, digest,
        )  # fmt: skip

    @contextmanager
    def _caused_by(self, event: RecordedEvent) -> Iterator[None]:
        previous, self._cause = self._cause, event
        try:
            yield
        finally:
            self._cause = previous

    def settle(self) -> list[RecordedEvent]:
        """Run projections and policy reactors until no new event appears; returns every event of this unit.

        Called by `commit`; an adapter calls it first when it must write something that depends on the reactions
        (an idempotent response) in the same transaction.
        """
        connection = self.connection
        rounds = 0
        while self._settled < len(self._new):
            rounds += 1
            if rounds > MAX_REACTION_ROUNDS:
                raise TrialStackError(f"policy reactions did not settle after {MAX_REACTION_ROUNDS} rounds")
            batch = self._new[self._settled :]
            self._settled = len(self._new)
            for projection in self._wiring.projections:
                relevant = relevant_events(projection, batch)
                if relevant:
                    projection.apply(connection, relevant)
            for event in batch:
                for reactor in self._wiring.reactors.get(event.event_type, ()):
                    with self._caused_by(event):
                        reactor(event, self)
        return list(self._new)

    def commit(self) -> list[RecordedEvent]:
        """Settle, write the study heads, commit. Returns every event appended, reactions included."""
        connection = self.connection
        self.settle()
        for study_id, (seq, last_hash) in self._heads.items():
            store.write_study_head(connection, study_id, seq, last_hash)
        connection.commit()
        self._committed = True
        return list(self._new)
