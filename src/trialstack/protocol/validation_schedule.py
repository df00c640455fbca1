"""Schedule consistency: nominal days where they belong, and windows that keep visits in order.

Visits with a nominal day (screening, scheduled, and an end of study visit that has one) are taken in
day order. Each visit's window must open after the previous visit's nominal day (or the later visit
could be done first) and after the previous window closes (or one visit date would fit both).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from trialstack.protocol.definition import StudyDefinition, Visit, VisitType
from trialstack.protocol.problems import Finding
from trialstack.protocol.schedule import day_offset


def _span(visit: Visit) -> str:
    days = visit.window_days()
    if days is None or days[0] == days[1]:
        return f"day {visit.day}"
    return f"days {days[0]} to {days[1]}"


def check_schedule(definition: StudyDefinition) -> Iterator[Finding]:
    """Every contradiction in the schedule's days and windows."""
    visits = definition.schedule.visits
    for v, visit in enumerate(visits):
        yield from _check_day(visit, f"/schedule/visits/{v}")
    yield from _check_anchor(definition)
    dated = sorted(
        (
            (v, visit)
            for v, visit in enumerate(visits)
            if visit.day is not None and visit.type is not VisitType.UNSCHEDULED
        ),
        key=lambda pair: (day_offset(pair[1].day or 1), pair[0]),
    )
    for (_, previous), (v, visit) in itertools.pairwise(dated):
        yield from _check_order(previous, visit, f"/schedule/visits/{v}")


def _check_day(visit: Visit, pointer: str) -> Iterator[Finding]:
    if visit.type in (VisitType.SCREENING, VisitType.SCHEDULED) and visit.day is None:
        yield Finding(pointer, f"{visit.type.value} visit {visit.id} needs a nominal study day (day)")
    if visit.type is VisitType.UNSCHEDULED and visit.day is not None:
        yield Finding(f"{pointer}/day", f"unscheduled visit {visit.id} has no nominal study day")
    if visit.type is VisitType.UNSCHEDULED and visit.window.early + visit.window.late > 0:
        yield Finding(f"{pointer}/window", f"unscheduled visit {visit.id} has no window")
    window = visit.window_days()
    if visit.type is VisitType.SCREENING and window is not None and window[1] >= 1:
        yield Finding(f"{pointer}/window", f"screening visit {visit.id} ({_span(visit)}) must end before study day 1")


def _check_anchor(definition: StudyDefinition) -> Iterator[Finding]:
    anchor_id = definition.schedule.anchor
    found = [(v, visit) for v, visit in enumerate(definition.schedule.visits) if visit.id == anchor_id]
    if not found:
        return  # reported as a dangling reference
    v, anchor = found[0]
    pointer = f"/schedule/visits/{v}"
    if anchor.type is VisitType.UNSCHEDULED:
        yield Finding("/schedule/anchor", f"the anchor visit {anchor.id} cannot be unscheduled: it defines study day 1")
        return
    window = anchor.window_days()
    if window is None:
        yield Finding(pointer, f"the anchor visit {anchor.id} needs day: 1 (it defines study day 1)")
    elif not window[0] <= 1 <= window[1]:
        yield Finding(
            f"{pointer}/window", f"the window of anchor visit {anchor.id} ({_span(anchor)}) excludes study day 1"
        )
    elif anchor.day != 1:
        yield Finding(
            f"{pointer}/day", f"the anchor visit {anchor.id} is study day 1 by definition, not day {anchor.day}"
        )


def _check_order(previous: Visit, visit: Visit, pointer: str) -> Iterator[Finding]:
    before, after = previous.window_days(), visit.window_days()
    if before is None or after is None or previous.day is None:
        return
    where = f"{pointer}/window"
    if day_offset(after[0]) <= day_offset(previous.day):
        yield Finding(
            where,
            f"the window of {visit.id} ({_span(visit)}) opens on or before day {previous.day}, the nominal day "
            f"of the previous visit {previous.id}: {visit.id} could be done before it",
        )
    elif day_offset(after[0]) <= day_offset(before[1]):
        yield Finding(
            where,
            f"the window of {visit.id} ({_span(visit)}) overlaps the window of {previous.id} ({_span(previous)}): "
            "one visit date would fit both",
        )
