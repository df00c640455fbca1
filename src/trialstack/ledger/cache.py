"""A per-process cache of folded stream states, so a save folds only the events since the last one.

Safe because committed events never change: a state folded up to version N stays right, and the loader reads
only events after N. States are immutable values. One cache belongs to one Platform (one database).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


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
        with self._lock:
            self._states[(stream_type, stream_id)] = state
            self._states.move_to_end((stream_type, stream_id))
            while len(self._states) > self._capacity:
                self._states.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
