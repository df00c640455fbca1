"""ISO 8601 durations (`P14D`, `-P2D`, `P2W`, `PT4H`) as whole study days.

ODM 2.0 timing constraints and USDM timings give offsets and windows as durations; the schedule counts
whole calendar days. Whatever does not convert exactly (a part of a day, months of unequal length)
comes back with a note, so the importer can tell the study builder what it rounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?!$)(?:(?P<Y>\d+(?:[.,]\d+)?)Y)?(?:(?P<M>\d+(?:[.,]\d+)?)M)?(?:(?P<W>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<D>\d+(?:[.,]\d+)?)D)?(?:T(?=\d)(?:(?P<h>\d+(?:[.,]\d+)?)H)?(?:(?P<m>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<s>\d+(?:[.,]\d+)?)S)?)?$"
)
_DAYS_PER = {"Y": Decimal(365), "M": Decimal(30), "W": Decimal(7), "D": Decimal(1)}
_SECONDS_PER = {"h": Decimal(3600), "m": Decimal(60), "s": Decimal(1)}


class DurationError(ValueError):
    """Text that is not an ISO 8601 duration."""


@dataclass(frozen=True)
class Days:
    """A duration in whole days (truncated toward zero) and what was approximated on the way."""

    days: int
    note: str | None = None


def parse_days(text: str) -> Days:
    """Whole days in `text`; years count 365 days and months 30 (with a note), parts of a day are dropped."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise DurationError(f"{text!r} is not an ISO 8601 duration such as P14D, -P2D or P2W")
    parts = {
        key: Decimal(value.replace(",", ".")) for key, value in match.groupdict().items() if value and key != "sign"
    }
    days = sum((parts.get(unit, Decimal(0)) * per for unit, per in _DAYS_PER.items()), Decimal(0))
    seconds = sum((parts.get(unit, Decimal(0)) * per for unit, per in _SECONDS_PER.items()), Decimal(0))
    total = days + seconds / Decimal(86400)
    whole = int(total)
    notes = []
    if "Y" in parts or "M" in parts:
        notes.append("years counted as 365 days and months as 30")
    if total != whole:
        notes.append(f"{text} is not a whole number of days; {whole} day(s) used")
    sign = -1 if match["sign"] == "-" else 1
    return Days(sign * whole, "; ".join(notes) or None)
