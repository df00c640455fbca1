"""When each instrument is due for a subject, and its window, in the participant's time zone. Pure.

Visit entries are due on the visit's date (completed on a site tablet); diary entries on each day (or week) of the
diary period, derived from the subject's visit dates, between the diary's `opens` and `closes` plus its grace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from trialstack.protocol.definition_questionnaires import DiaryFrequency, Instrument

END_OF_DAY = time(23, 59, 59, 999999)


@dataclass(frozen=True)
class Entry:
    """One expected completion: `entry` is a visit id or an ISO date; the window is [opens, closes] (aware)."""

    instrument: str
    entry: str
    day: date
    opens: datetime
    closes: datetime
    diary: bool

    def window_text(self) -> str:
        return f"{self.opens.isoformat(timespec='minutes')} to {self.closes.isoformat(timespec='minutes')}"


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone)


def visit_entries(instrument: Instrument, visit_dates: Mapping[str, date], zone: ZoneInfo) -> list[Entry]:
    return [
        Entry(instrument.id, visit, day, _at(day, time(0), zone), _at(day, END_OF_DAY, zone), diary=False)
        for visit in instrument.schedule.visits
        if (day := visit_dates.get(visit)) is not None
    ]


def diary_period(instrument: Instrument, visit_dates: Mapping[str, date]) -> tuple[date, date | None] | None:
    """First and last day of the diary (last None while its closing visit has not happened yet)."""
    diary = instrument.schedule.diary
    if diary is None or diary.from_visit not in visit_dates:
        return None
    start = visit_dates[diary.from_visit] - timedelta(days=diary.days_before)
    if diary.days_after is not None:
        return start, visit_dates[diary.from_visit] + timedelta(days=diary.days_after)
    return start, visit_dates.get(diary.until_visit or "")


def diary_entries(instrument: Instrument, visit_dates: Mapping[str, date], zone: ZoneInfo, until: date) -> list[Entry]:
    """The diary's entries from its first day to its last (or `until`, while the period is still open)."""
    diary = instrument.schedule.diary
    period = diary_period(instrument, visit_dates)
    if diary is None or period is None:
        return []
    first, last = period
    last = min(last, until) if last is not None else until
    step = timedelta(days=7 if diary.frequency is DiaryFrequency.WEEKLY else 1)
    grace = timedelta(hours=diary.grace_hours)
    entries, day = [], first
    while day <= last:
        opens, closes = _at(day, diary.opens, zone), _at(day, diary.closes, zone) + grace
        entries.append(Entry(instrument.id, day.isoformat(), day, opens, closes, diary=True))
        day += step
    return entries


def find_entry(
    instrument: Instrument, entry: str, visit_dates: Mapping[str, date], zone: ZoneInfo, until: date
) -> Entry | None:
    candidates = [*visit_entries(instrument, visit_dates, zone), *diary_entries(instrument, visit_dates, zone, until)]
    return next((candidate for candidate in candidates if candidate.entry == entry), None)
