"""The KRI watch: a crossing is recorded once, when the status changes, never at every check; a KRI with no status
records nothing unless it clears an earlier one; a funnel crossing says which side. Every event ops folds is one a
blinded user may see."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import trialstack.bootstrap  # noqa: F401  (registers every context's events)
from trialstack.ledger.registry import info, is_blinded
from trialstack.ops.kris import Figure
from trialstack.ops.model import KriWatch, decide_check, evolve
from trialstack.ops.readmodel import FOLDED
from trialstack.protocol.definition import KriId

DAY = date(2026, 3, 1)


def _figure(status: str, value: str = "12", kri: KriId = KriId.SDV_BACKLOG, **detail: object) -> Figure:
    return Figure(kri, "0101", Decimal(value), int(Decimal(value)), None, status, Decimal(10), detail)


def _run(state: KriWatch, figures: list[Figure]) -> tuple[KriWatch, list[str]]:
    decided = decide_check(state, figures, DAY)
    for event in decided:
        state = evolve(event, state)
    return state, [f"{e.from_status}->{e.to_status}" for e in decided]


def test_a_crossing_is_recorded_once_and_each_change_after_it() -> None:
    state = KriWatch("S")
    state, first = _run(state, [_figure("warn")])
    assert first == ["ok->warn"]
    state, again = _run(state, [_figure("warn", "13")])
    assert again == [], "still warn: nothing new to record"
    state, worse = _run(state, [_figure("breach", "31")])
    state, back = _run(state, [_figure("ok", "2")])
    assert (worse, back) == (["warn->breach"], ["breach->ok"])
    assert state.status("SDV_BACKLOG", "0101") == "ok"


def test_a_figure_without_status_records_nothing_unless_it_clears_an_earlier_one() -> None:
    state, quiet = _run(KriWatch("S"), [_figure("none")])
    assert quiet == []
    state, _ = _run(state, [_figure("breach")])
    state, cleared = _run(state, [_figure("none")])
    assert cleared == ["breach->none"]


def test_the_event_names_the_value_the_level_and_the_side_of_a_funnel() -> None:
    funnel = {"funnel": {"side": "low"}}
    (event,) = decide_check(KriWatch("S"), [_figure("warn", "1.25", KriId.AE_RATE, **funnel)], DAY)
    assert (event.kri, event.site_id, event.value, event.threshold) == ("AE_RATE", "0101", "1.25", "10")
    assert (event.direction, event.method, event.as_of) == ("below", "funnel", "2026-03-01")
    (plain,) = decide_check(KriWatch("S"), [_figure("warn")], DAY)
    assert (plain.direction, plain.method) == ("above", "threshold")


def test_ops_folds_no_blinded_event() -> None:
    for name in FOLDED:
        assert info(name).name == name
        assert not is_blinded(name), f"{name} is blinded: a KRI must not be derived from it"
    assert not {"TreatmentAllocated", "KitsRegistered", "ResupplyTriggered"} & FOLDED
    assert not is_blinded("KriThresholdCrossed")
