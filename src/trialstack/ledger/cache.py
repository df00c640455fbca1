"""A per-process cache of folded stream states, so a command folds only the events since the last one.

Safe because committed events never change: a state folded up to version N stays right, and the loader reads
only events after N. Only committed states go in: a unit of work keeps the states it folds aside and hands them
over when it commits (`UnitOfWork.load`), so a rolled-back append never leaves a state the ledger does not hold.
States are immutable values. One cache belongs to one Platform (one database).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Protocol


class Versioned(Protocol):
    """A folded state that knows the stream version it was folded to."""

    @property
    def version(self) -> int: ...


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
