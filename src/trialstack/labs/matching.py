"""Which subject and which visit a result belongs to: pure, from what the labs read model knows of the subject.

A result names its participant by the lab's patient id: the screening number itself, or an id a data manager
mapped to a subject. Its visit is the one it names (a CSV visit column), else the visit whose recorded date it was
collected on or up to `days_before_visit` days before, else the scheduled visit whose window contains the
collection date. None found, or more than one: the result waits in triage, never guessed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta

from trialstack.protocol.definition import StudyDefinition, VisitType


@dataclass(frozen=True)
class SubjectFacts:
    """What labs follows of a subject from capture's events (`capture.events.follow_subject`)."""

    subject_id: str
    site_id: str
    status: str
    visit_dates: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VisitMatch:
    visit: str | None
    reason: str | None = None
    """Why no visit could be chosen (the triage reason); None when `visit` is set."""
    candidates: tuple[str, ...] = ()


def _named_visit(definition: StudyDefinition, named: str) -> str | None:
    wanted = named.strip().casefold()
    for visit in definition.schedule.visits:
        if visit.id.casefold() == wanted or visit.name.casefold() == wanted:
            return visit.id
    return None


def match_visit(
    definition: StudyDefinition,
    subject: SubjectFacts,
    collected_on: date | None,
    named: str | None,
    days_before: int,
    expected_visits: Collection[str] = (),
) -> VisitMatch:
    """The visit of a result (see the module docstring). A visit instance (`UNSCHED.2`) counts as its visit.

    Two visits recorded near the collection date (screening and Day 1 on the same day) are told apart by the
    protocol: when only one of them expects a central sample, it is that one."""
    if named:
        visit = _named_visit(definition, named)
        if visit is None:
            return VisitMatch(None, f"the result names visit '{named}', which the schedule does not have")
        return VisitMatch(visit)
    if collected_on is None:
        return VisitMatch(None, "the result has neither a visit nor a collection date")
    near = sorted(
        instance
        for instance, recorded in subject.visit_dates.items()
        if collected_on <= date.fromisoformat(recorded) <= collected_on + timedelta(days=days_before)
    )
    expected = [instance for instance in near if instance.split(".")[0] in expected_visits]
    if len(near) == 1 or len(expected) == 1:
        return VisitMatch(near[0] if len(near) == 1 else expected[0])
    if len(near) > 1:
        return VisitMatch(None, f"collected {collected_on} near several visits", tuple(near))
    anchor_date = subject.visit_dates.get(definition.schedule.anchor)
    if anchor_date is None:
        return VisitMatch(None, f"collected {collected_on}, but no visit of the subject is recorded near that date")
    anchor = date.fromisoformat(anchor_date)
    windows = sorted(
        visit.id
        for visit in definition.schedule.visits
        if visit.type is not VisitType.UNSCHEDULED and not visit.repeating and visit.is_in_window(anchor, collected_on)
    )
    if len(windows) == 1:
        return VisitMatch(windows[0])
    if windows:
        return VisitMatch(None, f"collected {collected_on}, inside the windows of several visits", tuple(windows))
    return VisitMatch(None, f"collected {collected_on}, outside every visit's window")
