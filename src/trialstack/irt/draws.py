"""Random draws from a secret seed: HMAC-SHA-256 in counter mode, so a list is reproducible from its seed forever.

`random.Random` would do for simulation, but Python only promises its `random()` sequence across versions, not
`shuffle` or `randrange`; an allocation list must be reproducible from the seed years later, and unpredictable to
anyone who has seen part of it (HMAC is a PRF). Integers are drawn by rejection, so every value is equally likely.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from fractions import Fraction
from typing import TypeVar

T = TypeVar("T")
_BYTES = 8
_SPAN = 1 << (8 * _BYTES)


def seed_commitment(seed: bytes) -> str:
    """What the ledger records of a secret seed: its SHA-256, which proves the seed later without revealing it."""
    return hashlib.sha256(seed).hexdigest()


class Draws:
    """An endless stream of uniform draws under `seed`, in a named `purpose` (a list, one randomization number)."""

    def __init__(self, seed: bytes, purpose: str) -> None:
        if len(seed) < 16:
            raise ValueError("a randomization seed has at least 16 bytes")
        self._seed = seed
        self._purpose = purpose.encode()
        self._counter = 0

    def _word(self) -> int:
        self._counter += 1
        message = self._purpose + b"\x00" + self._counter.to_bytes(8, "big")
        return int.from_bytes(hmac.new(self._seed, message, hashlib.sha256).digest()[:_BYTES], "big")

    def below(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        if n <= 0:
            raise ValueError("below() needs a positive bound")
        limit = _SPAN - _SPAN % n
        while True:
            word = self._word()
            if word < limit:
                return word % n

    def choice(self, options: Sequence[T]) -> T:
        return options[self.below(len(options))]

    def shuffled(self, items: Sequence[T]) -> list[T]:
        """Fisher–Yates."""
        result = list(items)
        for i in range(len(result) - 1, 0, -1):
            j = self.below(i + 1)
            result[i], result[j] = result[j], result[i]
        return result

    def chance(self, probability: Fraction) -> bool:
        """True with `probability` (to one part in 10**9)."""
        return self.below(10**9) < probability * 10**9
