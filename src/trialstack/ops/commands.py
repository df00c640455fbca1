"""Commands of the ops context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class CheckKris:
    """Compute every KRI as of `as_of` and record each status that changed since the last check."""

    as_of: date
