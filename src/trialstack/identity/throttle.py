"""In-process throttling of sign-in attempts per (username, client address).

The ledger's lockout protects one account from slow guessing across the world; this protects the service from
fast guessing from one place, and is the only brake on attempts against unknown or locked accounts, which are
never written to the ledger. It is per process: behind N workers an attacker gets N times the budget, which
the lockout still caps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from trialstack.identity.model import TooManyAttempts


class LoginThrottle:
    def __init__(self, limit: int = 10, window: timedelta = timedelta(minutes=5), capacity: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self._capacity = capacity
        self._failures: OrderedDict[tuple[str, str], deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        return failures

    def check(self, username: str, address: str, now: datetime) -> None:
        """Raise TooManyAttempts when `limit` failures fell in the last `window` from this address for this user."""
        key = (username.lower(), address)
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) >= self.limit:
                retry = int((failures[0] + self.window - now).total_seconds()) + 1
                raise TooManyAttempts(f"too many sign-in attempts; try again in {retry} seconds", retry_after=retry)

    def failed(self, username: str, address: str, now: datetime) -> None:
        key = (username.lower(), address)
        with self._lock:
            failures = self._recent(key, now)
            failures.append(now)
            self._failures[key] = failures
            self._failures.move_to_end(key)
            while len(self._failures) > self._capacity:
                self._failures.popitem(last=False)

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), address), None)
