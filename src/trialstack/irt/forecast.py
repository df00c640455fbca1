"""Predicted demand: the kits each site's subjects will need at dispensing visits due in the next days. Pure.

A randomized subject's visit is due on its nominal date (anchor visit date + the visit's study day); a subject not
yet randomized counts as one dispensing of every arm at the randomization visit, since nobody knows which yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from trialstack.irt.model import Allocation
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.schedule import date_of_study_day

ON_STUDY = frozenset({"screening", "enrolled"})


@dataclass(frozen=True)
class SubjectOutlook:
    subject_id: str
    site_id: str
    status: str
    visit_dates: Mapping[str, date]


def demand(
    definition: StudyDefinition,
    subjects: Iterable[SubjectOutlook],
    allocations: Mapping[str, Allocation],
    dispensed: Mapping[tuple[str, str], tuple[str, ...]],
    today: date,
) -> dict[str, dict[str, int]]:
    """Site → arm → kits needed at visits due from today through each site's prediction window."""
    supply, randomization = definition.supply, definition.randomization
    needed: dict[str, dict[str, int]] = {}
    if supply is None or randomization is None:
        return needed
    anchor = definition.schedule.anchor
    for subject in subjects:
        if subject.status not in ON_STUDY:
            continue
        horizon = today + timedelta(days=supply.levels_for(subject.site_id).predict_days)
        site = needed.setdefault(subject.site_id, {})
        allocation = allocations.get(subject.subject_id)
        if allocation is None or allocation.arm is None:
            first = supply.dispensing_at(randomization.visit)
            for arm in [a.id for a in definition.arms] if first is not None else []:
                site[arm] = site.get(arm, 0) + (first.kits if first else 0)
            continue
        anchor_date = subject.visit_dates.get(anchor)
        if anchor_date is None:
            continue
        for dispensing in supply.dispensing:
            visit = definition.visit(dispensing.visit)
            if visit is None or visit.day is None or (subject.subject_id, visit.id) in dispensed:
                continue
            due = date_of_study_day(anchor_date, visit.day)
            if today <= due <= horizon:
                site[allocation.arm] = site.get(allocation.arm, 0) + dispensing.kits
    return needed
