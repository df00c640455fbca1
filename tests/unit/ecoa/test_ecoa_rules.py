"""Instrument logic and diary windows, pure: scoring with missing items, skip logic, scales, time zones."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from trialstack.ecoa.schedule import diary_entries, find_entry, visit_entries
from trialstack.protocol.definition import Instrument, StudyDefinition
from trialstack.protocol.questionnaire_rules import alerts, answer_problem, compile_instrument, score, shown_items
from trialstack.standards.loader import load_study_file

DEMO = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"


@pytest.fixture(scope="module")
def demo() -> StudyDefinition:
    return load_study_file(DEMO)


def _instrument(demo: StudyDefinition, instrument_id: str) -> Instrument:
    instrument = demo.instrument(instrument_id)
    assert instrument is not None
    return instrument


def test_phq9_total_is_the_sum_and_prorates_up_to_two_missing_items(demo: StudyDefinition) -> None:
    compiled = compile_instrument(_instrument(demo, "PHQ9"))
    answers = {f"PHQ{n:02d}": str(n % 4) for n in range(1, 10)}
    assert [r.value for r in score(compiled, answers)] == [str(sum(n % 4 for n in range(1, 10)))]
    two_missing = {k: v for k, v in answers.items() if k not in ("PHQ01", "PHQ02")}
    (prorated,) = score(compiled, two_missing)
    mean = sum(n % 4 for n in range(3, 10)) / 7
    assert (prorated.missing, prorated.value) == (2, f"{sum(n % 4 for n in range(3, 10)) + 2 * mean:.2f}".rstrip("0"))
    three_missing = {k: v for k, v in two_missing.items() if k != "PHQ03"}
    assert score(compiled, three_missing)[0].value is None


def test_skip_logic_and_alerts(demo: StudyDefinition) -> None:
    phq = compile_instrument(_instrument(demo, "PHQ9"))
    zeros = {f"PHQ{n:02d}": "0" for n in range(1, 10)}
    assert "PHQ10" not in [item.id for item in shown_items(phq, zeros)]
    assert "PHQ10" in [item.id for item in shown_items(phq, {**zeros, "PHQ02": "1"})]
    assert alerts(phq, zeros, score(phq, zeros)) == []
    assert alerts(phq, {**zeros, "PHQ09": "1"}, score(phq, {**zeros, "PHQ09": "1"})) == ["PHQ9-ITEM9"]
    diary = compile_instrument(_instrument(demo, "DIARY"))
    assert "TAKENAT" not in [item.id for item in shown_items(diary, {"TAKEN": "N"})]


@pytest.mark.parametrize(
    ("item_id", "answer", "fits"),
    [("DIZZY", "10", True), ("DIZZY", "11", False), ("DIZZY", "x", False), ("WELLBEING", "100", True),
     ("WELLBEING", "-1", False), ("TAKEN", "Y", True), ("TAKEN", "maybe", False), ("TAKENAT", "07:45", True),
     ("TAKENAT", "25:00", False)],
)  # fmt: skip
def test_answers_fit_their_scale_or_options(demo: StudyDefinition, item_id: str, answer: str, fits: bool) -> None:
    item = _instrument(demo, "DIARY").item(item_id)
    assert item is not None
    assert (answer_problem(item, answer) is None) is fits


def test_diary_windows_follow_the_time_zone_across_a_daylight_saving_change(demo: StudyDefinition) -> None:
    diary = _instrument(demo, "DIARY")
    chicago = ZoneInfo("America/Chicago")
    entries = diary_entries(diary, {"DAY1": date(2026, 3, 6)}, chicago, until=date(2026, 12, 31))
    assert [e.entry for e in entries] == [f"2026-03-{d:02d}" for d in range(6, 13)]
    before, after = entries[1], entries[3]  # 7 March (CST) and 9 March (CDT, from 8 March)
    assert before.opens.utcoffset() != after.opens.utcoffset()
    assert before.opens.hour == after.opens.hour == 17
    assert (after.closes - after.opens).total_seconds() == (6 * 60 + 59) * 60 + 2 * 3600
    assert diary_entries(diary, {}, chicago, until=date(2026, 12, 31)) == []


def test_visit_entries_are_due_on_the_visit_date(demo: StudyDefinition) -> None:
    phq = _instrument(demo, "PHQ9")
    zone = ZoneInfo("America/New_York")
    (day1,) = visit_entries(phq, {"DAY1": date(2026, 1, 5), "WEEK2": date(2026, 1, 19)}, zone)
    assert (day1.entry, day1.opens.date()) == ("DAY1", date(2026, 1, 5))
    assert find_entry(phq, "WEEK2", {"WEEK2": date(2026, 1, 19)}, zone, date(2026, 2, 1)) is None
