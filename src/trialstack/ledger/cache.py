"""A per-process cache of folded stream states, so a command folds only the events since the last one.

Safe because committed events never change: a state folded up to version N stays right, and the loader reads
only events after N. A state is kept with the hash of the event at its version (`Folded`) and reused only while
the ledger holds that event at that version, checked in the same round trip as the read of the events after it.
Only committed states go in: a unit of work keeps the states it folds aside and hands them over when it commits
(`UnitOfWork.load`). States are immutable values. One cache belongs to one Platform (one database).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection

from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent


class Versioned(Protocol):
    """A folded state that knows the stream version it was folded to."""

    @property
    def version(self) -> int: ...


StateT = TypeVar("StateT", bound=Versioned)
Fold = Callable[[StateT, Sequence[RecordedEvent]], StateT]
"""Folds events (in version order, never none) into a state; the result carries the last event's version."""


class Folded(Generic[StateT]):
    """A stream's state folded to `version`, and the hash of the stream's event at that version.

    The state may be given as the function that folds it (`Folded.later`): it is folded the first time it is
    asked for, so a state offered to the cache costs nothing until a later command needs it.
    """

    __slots__ = ("_fold", "_state", "digest", "version")

    def __init__(self, state: StateT, version: int, digest: str) -> None:
        self._state: StateT | None = state
        self._fold: Callable[[], StateT] | None = None
        self.version = version
        self.digest = digest

    @classmethod
    def later(cls, fold: Callable[[], StateT], version: int, digest: str) -> Folded[StateT]:
        folded: Folded[StateT] = cls.__new__(cls)
        folded._state, folded._fold, folded.version, folded.digest = None, fold, version, digest
        return folded

    @property
    def state(self) -> StateT:
        state = self._state
        if state is None:
            fold = self._fold
            if fold is None:  # another thread folded it meanwhile: it sets the state before it drops the fold
                state = self._state
            else:
                state = fold()
                if state.version != self.version:
                    raise ValueError(f"a state folded to version {state.version}, not {self.version}")
                self._state, self._fold = state, None
        if state is None:
            raise ValueError("a folded state without a state")
        return state


@dataclass(frozen=True, slots=True)
class StreamLoad(Generic[StateT]):
    """One stream to bring up to date: its state when it has no events, and how events fold into it."""

    stream_type: str
    stream_id: str
    empty: StateT
    fold: Fold[StateT]

    @property
    def key(self) -> tuple[str, str]:
        return (self.stream_type, self.stream_id)


def _version_of(state: Any) -> int | None:
    version = getattr(state, "version", None)
    return version if isinstance(version, int) else None


class StreamStateCache:
    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._states: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stream_type: str, stream_id: str) -> Any | None:
        with self._lock:
            state = self._states.get((stream_type, stream_id))
            if state is not None:
                self._states.move_to_end((stream_type, stream_id))
            return state

    def put(self, stream_type: str, stream_id: str, state: Any) -> None:
        """Keep `state`, unless the cache already holds a state of the same stream folded further (threads that
        committed in another order than they read must not move a stream's state back)."""
        key = (stream_type, stream_id)
        with self._lock:
            current = self._states.get(key)
            held, offered = _version_of(current), _version_of(state)
            if current is None or held is None or offered is None or offered >= held:
                self._states[key] = state
            self._states.move_to_end(key)
            while len(self._states) > self._capacity:
                self._states.popitem(last=False)

    def discard(self, stream_type: str, stream_id: str) -> None:
        with self._lock:
            self._states.pop((stream_type, stream_id), None)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


def load_streams(
    connection: Connection,
    cache: StreamStateCache,
    loads: Sequence[StreamLoad[Any]],
    pending: Mapping[tuple[str, str], Folded[Any]] | None = None,
) -> list[Folded[Any]]:
    """Bring several streams' states up to date, from `pending` or the cache when they hold a state of the right
    type, in one round trip (`store.read_many`): per stream, the events from the state's version on, the first of
    which must be the event the state was folded to (same version, same hash); a state whose event is not in the
    ledger any more is dropped and its stream folded again.

    Outside a unit of work (`pending` None) the connection reads committed events only, so the states go straight
    into the cache; a unit of work keeps them in `pending` until it commits.
    """
    return fetch_and_load(connection, cache, (), loads, pending)[1]


def fetch_and_load(
    connection: Connection,
    cache: StreamStateCache,
    reads: Sequence[store.Read],
    loads: Sequence[StreamLoad[Any]],
    pending: Mapping[tuple[str, str], Folded[Any]] | None = None,
) -> tuple[list[list[tuple[Any, ...]]], list[Folded[Any]]]:
    """`load_streams`, with the rows of other independent reads sent in the same round trip."""
    starts: list[Folded[Any] | None] = []
    reads = list(reads)
    asked = len(reads)
    for load in loads:
        entry = (pending or {}).get(load.key) or cache.get(load.stream_type, load.stream_id)
        start = entry if isinstance(entry, Folded) and isinstance(entry.state, type(load.empty)) else None
        starts.append(start)
        reads += store.stream_tail_reads(connection, load.stream_type, load.stream_id, start.version if start else 0)
    rows = store.read_many(connection, reads)
    answers = iter(rows[asked:])
    results: list[Folded[Any]] = []
    for load, start in zip(loads, starts, strict=True):
        events = [store.to_event(row) for row in next(answers)]
        if start is not None:
            anchor, events = (events[0] if events else None), events[1:]
            if anchor is None or (anchor.stream_version, anchor.hash) != (start.version, start.digest):
                cache.discard(load.stream_type, load.stream_id)
                start, events = None, store.read_stream(connection, load.stream_type, load.stream_id)
        if events:
            state = load.fold(start.state if start is not None else load.empty, events)
            folded = Folded(state, events[-1].stream_version, events[-1].hash)
            if state.version != folded.version:
                raise ValueError(f"folding {load.key} gave version {state.version}, not {folded.version}")
            if pending is None:
                cache.put(load.stream_type, load.stream_id, folded)
        else:
            folded = start if start is not None else Folded(load.empty, 0, "")
        results.append(folded)
    return rows[:asked], results
