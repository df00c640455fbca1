"""Commands of the reconcile context. Everything else it does is a reaction to other contexts' events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class SweepMissingSamples:
    """Look for expected central samples that have not arrived `missing_after_days` after their visit, as of
    `as_of` (the clock's day: a sample becomes missing by the passing of time, which no event announces)."""

    as_of: date
