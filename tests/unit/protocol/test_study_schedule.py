"""Study days have no day 0, so windows that cross day 1 need care; the arithmetic is checked exhaustively."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialstack.protocol.schedule import (
    Visit,
    Window,
    date_of_study_day,
    day_offset,
    study_day_at,
    study_day_of,
)

study_days = st.integers(min_value=-3650, max_value=3650).filter(lambda day: day != 0)
ANCHOR = date(2025, 3, 3)


@given(study_days)
def test_offsets_and_study_days_are_inverse(day: int) -> None:
    assert study_day_at(day_offset(day)) == day


@given(st.integers(min_value=-3650, max_value=3650))
def test_no_offset_maps_to_day_zero(offset: int) -> None:
    assert study_day_at(offset) != 0


@given(study_days, st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)))
def test_dates_and_study_days_are_inverse(day: int, anchor: date) -> None:
    assert study_day_of(anchor, date_of_study_day(anchor, day)) == day


def test_the_day_before_day_1_is_day_minus_1() -> None:
    assert date_of_study_day(ANCHOR, 1) == ANCHOR
    assert date_of_study_day(ANCHOR, -1) == ANCHOR - timedelta(days=1)
    assert date_of_study_day(ANCHOR, 15) == ANCHOR + timedelta(days=14)
    with pytest.raises(ValueError, match="no study day 0"):
        day_offset(0)


def test_a_window_across_day_1_skips_day_0() -> None:
    visit = Visit(id="DAY1", name="Day 1", day=1, window=Window(early=3, late=2))
    assert visit.window_days() == (-3, 3)
    assert visit.window_dates(ANCHOR) == (ANCHOR - timedelta(days=3), ANCHOR + timedelta(days=2))


@given(study_days, st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=30), st.integers(-60, 60))
def test_in_window_means_within_early_and_late_calendar_days(day: int, early: int, late: int, shift: int) -> None:
    visit = Visit(id="V", name="Visit", day=day, window=Window(early=early, late=late))
    nominal = date_of_study_day(ANCHOR, day)
    assert visit.is_in_window(ANCHOR, nominal + timedelta(days=shift)) == (-early <= shift <= late)


def test_a_visit_without_a_nominal_day_has_no_window() -> None:
    visit = Visit(id="UNSCHED", name="Unscheduled", type="unscheduled", repeating=True)
    assert visit.window_days() is None
    assert visit.is_in_window(ANCHOR, ANCHOR) is None
