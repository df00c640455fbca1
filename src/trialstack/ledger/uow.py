"""The unit of work: one database transaction for append + reactors + projections (DESIGN.md §1).

The outbox is the ledger itself (see outbox.py), so committing the events is committing the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from trialstack.clock import Clock, utc_timestamp
from trialstack.errors import TrialStackError
from trialstack.ledger import store
from trialstack.ledger.cache import Fold, Folded, StateT, StreamLoad, StreamStateCache, Versioned, fetch_and_load
from trialstack.ledger.canonical import canonical_payload
from trialstack.ledger.chain import chain_hash, envelope_bytes
from trialstack.ledger.database import WRITE_OPTION
from trialstack.ledger.envelope import Actor, NewEvent, RecordedEvent
from trialstack.ledger.errors import ConcurrencyConflict, LedgerError
from trialstack.ledger.vault import Vault
from trialstack.ledger.wiring import LedgerWiring, relevant_events

MAX_REACTION_ROUNDS = 20
ANALYZE_AT_FLUSH = frozenset(4**n for n in range(1, 8))
"""Flushes after which PostgreSQL's statistics are refreshed in a long unit of work (4, 16, 64, ... 16,384)."""


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
        vault: Vault | None = None,
    ) -> None:
        self._engine = engine
        self._vault = vault
        self.cache = cache or StreamStateCache(capacity=64)
        self._wiring = wiring
        self._clock = clock
        self.actor = actor
        self.correlation_id = correlation_id or str(uuid.uuid4())
        self._heads: dict[str, tuple[int, str]] = {}
        self._versions: dict[tuple[str, str], int] = {}
        """Stream versions this unit knows to be current: read, observed by `load`, or reached by its appends."""
        self._states: dict[tuple[str, str], Folded[Any]] = {}
        """States folded by `load` (or offered to `remember`): handed to the shared cache when the unit commits."""
        self._tips: dict[tuple[str, str], tuple[int, str]] = {}
        """(version, hash) of the last event this unit appended to each stream."""
        self._new: list[RecordedEvent] = []
        self._reacted = 0
        self._projected = 0
        self._flushed = 0
        self._flushes = 0
        self._together: list[tuple[Any, ...]] | None = None
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
    def vault(self) -> Vault:
        """The personal-data vault, used inside this unit's transaction (sealing commits or rolls back with it)."""
        if self._vault is None:
            raise LedgerError("this unit of work was opened without the personal-data vault")
        return self._vault

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def new_events(self) -> list[RecordedEvent]:
        """Events appended in this unit so far, in order (policy reactions included after commit)."""
        return list(self._new)

    def read_stream(self, stream_type: str, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        events = store.read_stream(self.connection, stream_type, stream_id, after_version)
        if after_version == 0:
            self._versions[(stream_type, stream_id)] = events[-1].stream_version if events else 0
        return events

    def load(self, stream_type: str, stream_id: str, empty: StateT, fold: Fold[StateT]) -> StateT:
        """A stream's state: the cached one (or `empty`) brought up to date with the events that follow it.

        See `load_many`.
        """
        state: StateT = self.load_many([StreamLoad(stream_type, stream_id, empty, fold)])[0]
        return state

    def load_many(self, loads: Sequence[StreamLoad[Any]]) -> list[Any]:
        """Several streams' states, each from its cached state brought up to date, in one round trip.

        The read proves each cached state is still its stream's (the hash of the event at its version) and gives
        the stream's current version, so `append` needs no other read for its optimistic check. The states reach
        the shared cache when the unit commits (this transaction also sees its own appends).
        """
        return self.fetch_and_load((), loads)[1]

    def fetch_and_load(
        self, reads: Sequence[store.Read], loads: Sequence[StreamLoad[Any]]
    ) -> tuple[list[list[tuple[Any, ...]]], list[Any]]:
        """The rows of other independent reads (a command's read-model lookups) and `load_many`'s states, all in
        one round trip."""
        rows, results = fetch_and_load(self.connection, self.cache, reads, loads, self._states)
        for load, folded in zip(loads, results, strict=True):
            self._versions[load.key] = folded.version
            if folded.version > 0:
                self._states[load.key] = folded
        return rows, [folded.state for folded in results]

    def remember(self, stream_type: str, stream_id: str, version: int, fold: Callable[[], Versioned]) -> None:
        """Offer the state a stream reached at `version` with this unit's own append, for the shared cache if the
        unit commits. `fold` computes it, the first time a later command loads the stream (never, if none does).

        Ignored unless `version` is the one the last event this unit appended to the stream has.
        """
        key = (stream_type, stream_id)
        tip = self._tips.get(key)
        if tip is not None and tip[0] == version and self._versions.get(key) == version:
            self._states[key] = Folded.later(fold, *tip)

    def stream_version(self, stream_type: str, stream_id: str) -> int:
        key = (stream_type, stream_id)
        if key not in self._versions:
            self._versions[key] = store.current_stream_version(self.connection, stream_type, stream_id)
        return self._versions[key]

    def _version_to_append_at(self, stream_type: str, stream_id: str, expected_version: int | None) -> int:
        """The stream's version for an append: known in this unit, else read (under the study lock).

        An expected version of 0 is taken at its word without a read: if the stream is not empty, its version 1
        is taken and the INSERT fails on the (stream, version) constraint, which `append` reports as a conflict.
        """
        key = (stream_type, stream_id)
        if key in self._versions:
            return self._versions[key]
        if expected_version == 0:
            return 0
        return self.stream_version(stream_type, stream_id)

    def append(
        self,
        study_id: str,
        stream_type: str,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        actor: Actor | None = None,
        checked: bool = False,
    ) -> list[RecordedEvent]:
        """Append events to one stream; `expected_version` None skips the optimistic check (inbound feeds).

        A NewEvent whose `(source, external_id)` is already in the ledger is a repeat: nothing is written for it
        and the stored event is returned in its place. `checked`: the caller has just asked `stored_external_ids`
        for these under the study lock (a batch of inbound data asks once, not once per stream); the unique
        constraint still refuses a duplicate.
        """
        connection = self.connection
        seq, prev = self.lock_study(study_id)
        version = self._version_to_append_at(stream_type, stream_id, expected_version)
        if expected_version is not None and expected_version != version:
            raise ConcurrencyConflict(stream_type, stream_id, expected_version, version)
        who = actor or self.actor
        causation = self._cause.event_ref if self._cause is not None else None
        recorded_at = utc_timestamp(self._clock.now())
        result: list[RecordedEvent] = []
        fresh: list[RecordedEvent] = []
        seen: set[tuple[str, str]] = set()
        inbound = [(e.source, e.external_id) for e in events if e.source is not None and e.external_id is not None]
        stored = store.find_by_external_ids(connection, inbound) if inbound and not checked else {}
        for new in events:
            if new.source is not None and new.external_id is not None:
                key = (new.source, new.external_id)
                if key in seen:
                    raise LedgerError(f"external id {key!r} appears twice in one append")
                seen.add(key)
                repeat = stored.get(key)
                if repeat is not None:
                    result.append(repeat)
                    continue
            seq += 1
            version += 1
            event = self._record(new, study_id, seq, stream_type, stream_id, version, who, causation, prev, recorded_at)
            prev = event.hash
            fresh.append(event)
        if self._together is not None:
            if expected_version is not None:
                raise LedgerError("appends inserted together take no expected version (inbound data only)")
            self._together.extend(e[1:] for e in fresh)
        else:
            self._insert(fresh, stream_type, stream_id, expected_version)
        self._heads[study_id] = (seq, prev)
        self._versions[(stream_type, stream_id)] = version
        if fresh:
            self._tips[(stream_type, stream_id)] = (version, fresh[-1].hash)
        self._new.extend(fresh)
        result.extend(fresh)
        return result

    def _insert(
        self, fresh: list[RecordedEvent], stream_type: str, stream_id: str, expected_version: int | None
    ) -> None:
        connection = self.connection
        try:
            store.insert_events(connection, [e[1:] for e in fresh])
        except (IntegrityError, connection.dialect.loaded_dbapi.IntegrityError) as error:
            if not store.is_stream_version_conflict(error):
                raise
            actual = self._committed_version(stream_type, stream_id)
            raise ConcurrencyConflict(stream_type, stream_id, expected_version or 0, actual) from None

    @contextmanager
    def inserted_together(self) -> Iterator[None]:
        """Appends inside the block write their rows in one INSERT (COPY on PostgreSQL) when it ends: an inbound
        batch appends to a hundred subjects' streams in one round trip instead of a hundred. Only appends without
        an expected version (inbound data) may run inside; the rows are written before anything reads them (the
        block ends before the batch settles)."""
        self._together = []
        try:
            yield
            rows, self._together = self._together, None
            if rows:
                store.insert_events(self.connection, rows)
        finally:
            self._together = None

    def lock_study(self, study_id: str) -> tuple[int, str]:
        """Take the study's head lock now (appends take it anyway): reads made after it see every committed
        append of the study and none can slip in before this unit's own (an inbound batch's lookups)."""
        if study_id not in self._heads:
            self._heads[study_id] = store.lock_study_head(self.connection, study_id)
        return self._heads[study_id]

    def stored_external_ids(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these `(source, external_id)` keys the ledger holds (this unit's appends included)."""
        return set(store.find_by_external_ids(self.connection, keys)) if keys else set()

    def _committed_version(self, stream_type: str, stream_id: str) -> int:
        """The stream's committed version, read on a connection of its own (this transaction may be aborted).

        The rows an append collided with are committed: appends to a study hold its head lock until they end.
        """
        with self._engine.connect() as other:
            return store.current_stream_version(other, stream_type, stream_id)

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
    def caused_by(self, event: RecordedEvent) -> Iterator[None]:
        previous, self._cause = self._cause, event
        try:
            yield
        finally:
            self._cause = previous

    def settle(self) -> list[RecordedEvent]:
        """Run the policy reactors until no new event appears, then the projections; returns every event of this unit.

        Reactors see the read models as this unit found them; each projection then folds every event of the unit
        (reactions included) in one batch: one set of read-model reads and writes per unit, not per round.
        Called by `commit`; an adapter calls it first when it must write something that depends on the reactions
        (an idempotent response) in the same transaction.
        """
        self._react()
        with store.pipelined(self.connection):
            self._project()
        return list(self._new)

    def _react(self) -> None:
        rounds = 0
        while self._reacted < len(self._new):
            rounds += 1
            if rounds > MAX_REACTION_ROUNDS:
                raise TrialStackError(f"policy reactions did not settle after {MAX_REACTION_ROUNDS} rounds")
            batch = self._new[self._reacted :]
            self._reacted = len(self._new)
            for event in batch:
                for reactor in self._wiring.reactors.get(event.event_type, ()):
                    with self.caused_by(event):
                        reactor(event, self)
            for event_types, batch_reactor in self._wiring.batch_reactors:
                relevant = [event for event in batch if event.event_type in event_types]
                if relevant:
                    batch_reactor(relevant, self)

    def _project(self) -> None:
        batch = self._new[self._projected :]
        self._projected = len(self._new)
        if batch:
            for projection in self._wiring.projections:
                relevant = relevant_events(projection, batch)
                if relevant:
                    projection.apply(self.connection, relevant)

    def flush(self) -> int:
        """Settle what was appended so far (reactions, read models) and let go of those events: a long import
        (a million lab results) keeps its memory flat in one transaction. Returns how many events it let go.

        The transaction stays open; `commit` (or a rollback) still decides for everything. `new_events` and
        `commit`'s result hold only what came after the last flush.
        """
        settled = self.settle()
        self._flushes += 1
        if self._flushes in ANALYZE_AT_FLUSH and self.connection.dialect.name == "postgresql":
            self._analyze(settled)
        flushed = len(self._new)
        self._new.clear()
        self._reacted = self._projected = 0
        self._flushed += flushed
        return flushed

    def _analyze(self, batch: Sequence[RecordedEvent]) -> None:
        """ANALYZE the ledger and the read models this batch wrote to. PostgreSQL plans with statistics that know
        nothing of the rows this transaction added; as a long import grows them, a lookup of a few keys planned
        for a small table becomes a scan of a large one. ANALYZE inside the transaction counts its own rows."""
        tables = {"ledger_event"}
        for projection in self._wiring.projections:
            if relevant_events(projection, batch):
                tables.update(table.name for table in projection.tables)
        for table in sorted(tables):
            self.connection.exec_driver_sql(f"ANALYZE {table}")

    @property
    def flushed(self) -> int:
        """Events appended before the last `flush` (no longer in `new_events`)."""
        return self._flushed

    def commit(self) -> list[RecordedEvent]:
        """Settle, write the study heads, commit. Returns every event appended, reactions included.

        The read-model and study-head writes go out pipelined with the COMMIT (`store.pipelined`). The states
        `load` folded (or `remember` was given) go to the shared cache once the commit succeeded: every event they
        fold is committed now.
        """
        connection = self.connection
        self._react()
        with store.pipelined(connection):
            self._project()
            for study_id, (seq, last_hash) in self._heads.items():
                store.write_study_head(connection, study_id, seq, last_hash)
            store.commit(connection)
        connection.commit()
        self._committed = True
        for (stream_type, stream_id), folded in self._states.items():
            self.cache.put(stream_type, stream_id, folded)
        return list(self._new)
