"""USDM schedule timelines -> visits with nominal days and windows, and the forms due at each visit.

The main timeline's "Fixed Reference" timing names the anchor instance: its encounter is study day 1.
Every other timing places its instance `value` before or after another instance (ISO 8601 durations such
as P2W), with `windowLower` / `windowUpper` around it. Encounters become visits; an encounter scheduled
by several instances takes the timing its `scheduledAtId` names (else the first), and the others are
reported. A timeline that an activity of the main timeline refers to is that activity's sub-timeline (its
activities' forms are due where the activity is); any other timeline is conditional (adverse events,
early termination) and becomes an unscheduled, repeating visit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from trialstack.protocol.definition import Epoch, Schedule, Visit, VisitType, Window
from trialstack.protocol.problems import StudyDefinitionError
from trialstack.protocol.schedule import study_day_at
from trialstack.standards.identifiers import IdentifierMap, to_identifier
from trialstack.standards.report import MappingReport
from trialstack.standards.usdm_forms import ActivityForms
from trialstack.standards.usdm_model import ScheduledInstance, ScheduleTimeline, StudyDesign
from trialstack.standards.usdm_source import UsdmSource
from trialstack.standards.usdm_timing import Placement, TimingResolver, kind_of


@dataclass
class ScheduleResult:
    schedule: Schedule
    epochs: list[Epoch]
    origin: dict[str, str] = field(default_factory=dict)  # visit id -> JSON pointer


class ScheduleBuilder:
    def __init__(self, design: StudyDesign, source: UsdmSource, report: MappingReport, forms: ActivityForms) -> None:
        self.design = design
        self.source = source
        self.report = report
        self.forms = forms
        self.activities = {activity.id: activity for activity in design.activities}
        self.timelines = {timeline.id: timeline for timeline in design.schedule_timelines}
        self.visit_ids = IdentifierMap(fallback="V")
        self.epoch_ids = IdentifierMap(fallback="E")

    def build(self) -> ScheduleResult:
        main = self._main_timeline()
        epochs = self._epochs()
        instances = _in_order(main)
        placements, anchor = TimingResolver(self.source, self.report).placements(main)
        visits: list[Visit] = []
        origin: dict[str, str] = {}
        encounters = {encounter.id: encounter for encounter in self.design.encounters}
        by_encounter: dict[str, list[ScheduledInstance]] = {}
        for instance in instances:
            if instance.instance_type == "ScheduledDecisionInstance":
                reason = "decision instance: its branches are not mapped; every path's visits are kept"
                self.report.skip(self.source.pointers[instance.id], reason)
            if instance.encounter_id is not None:
                by_encounter.setdefault(instance.encounter_id, []).append(instance)
            elif instance.activity_ids:
                self.report.skip(
                    self.source.pointers[instance.id],
                    f"instance {instance.name} has no encounter: its activities are not scheduled",
                )
        subs = self._sub_timelines(instances)
        for encounter_id, scheduled in by_encounter.items():
            encounter = encounters[encounter_id]
            chosen = self._chosen(encounter.scheduled_at_id, scheduled, placements)
            visit = self._visit(
                encounter.name or encounter.id, encounter.title, scheduled, chosen, placements.get(chosen.id)
            )
            visits.append(visit)
            origin[visit.id] = self.source.pointers[encounter.id]
        for encounter in self.design.encounters:
            if encounter.id not in by_encounter:
                visit = Visit(
                    id=self.visit_ids.add(encounter.id, to_identifier(encounter.name or encounter.id, fallback="V")),
                    name=encounter.title,
                    type=VisitType.UNSCHEDULED,
                )
                self.report.note(
                    self.source.pointers[encounter.id],
                    f"encounter {encounter.name} is not in the main timeline: unscheduled visit {visit.id}",
                )
                visits.append(visit)
                origin[visit.id] = self.source.pointers[encounter.id]
        for timeline in self.design.schedule_timelines:
            if timeline is not main and timeline.id not in subs:
                visit = self._conditional(timeline)
                visits.append(visit)
                origin[visit.id] = self.source.pointers[timeline.id]
        scheduled_forms = {form for visit in visits for form in visit.forms}
        log_forms = tuple(form.id for form in self.forms.forms if form.id not in scheduled_forms)
        for form in log_forms:
            self.report.note(
                self.forms.origin[form], f"form {form} is in no timeline instance: a log form, collected outside visits"
            )
        anchor_visit = self.visit_ids.get(anchor.encounter_id or "")
        if anchor_visit is None:
            raise StudyDefinitionError(
                self.source.file,
                [
                    self.source.problem(
                        self.source.pointers[anchor.id],
                        "the anchor instance has no encounter: no visit can be study day 1",
                    )
                ],
            )
        schedule = Schedule(anchor=anchor_visit, visits=tuple(visits), log_forms=log_forms)
        return ScheduleResult(schedule, epochs, origin)

    def _main_timeline(self) -> ScheduleTimeline:
        mains = [timeline for timeline in self.design.schedule_timelines if timeline.main_timeline]
        if mains and not mains[0].instances:
            pointer = self.source.pointers[mains[0].id] + "/instances"
            raise StudyDefinitionError(
                self.source.file, [self.source.problem(pointer, "the main timeline has no instances")]
            )
        if not mains:
            pointer = self.source.pointers[self.design.id] + "/scheduleTimelines"
            raise StudyDefinitionError(
                self.source.file, [self.source.problem(pointer, "no schedule timeline has mainTimeline: true")]
            )
        for extra in mains[1:]:
            self.report.skip(
                self.source.pointers[extra.id],
                f"a second main timeline ({extra.name}); only {mains[0].name} is the schedule",
            )
        return mains[0]

    def _epochs(self) -> list[Epoch]:
        epochs = list(self.design.epochs)
        by_id = {epoch.id: epoch for epoch in epochs}
        first = [epoch for epoch in epochs if epoch.previous_id is None]
        ordered = []
        current = first[0] if len(first) == 1 else None
        while current is not None and current not in ordered:
            ordered.append(current)
            current = by_id.get(current.next_id or "")
        if len(ordered) != len(epochs):
            ordered = epochs
        result = []
        for epoch in ordered:
            result.append(
                Epoch(id=self.epoch_ids.add(epoch.id, to_identifier(epoch.name, fallback="E")), name=epoch.title)
            )
            self.report.map(self.source.pointers[epoch.id], f"epoch {self.epoch_ids[epoch.id]}")
        return result

    def _chosen(
        self, scheduled_at: str | None, instances: list[ScheduledInstance], placements: dict[str, Placement]
    ) -> ScheduledInstance:
        """The instance whose timing sets the encounter's day; the others are reported when they disagree."""
        chosen = next(
            (i for i in instances if (p := placements.get(i.id)) and p.timing and p.timing.id == scheduled_at),
            instances[0],
        )
        for other in instances:
            if other is not chosen and placements.get(other.id) != placements.get(chosen.id):
                here, there = placements.get(other.id), placements.get(chosen.id)
                shown = f"day {study_day_at(here.offset)}" if here else "no timing"
                kept = f"day {study_day_at(there.offset)}" if there else "no timing"
                self.report.note(
                    self.source.pointers[other.id],
                    f"instance {other.name} puts this encounter at {shown}; {chosen.name} at {kept} is kept "
                    f"and {other.name}'s activities are collected at that visit",
                )
        return chosen

    def _visit(
        self,
        name: str,
        title: str,
        instances: list[ScheduledInstance],
        chosen: ScheduledInstance,
        placement: Placement | None,
    ) -> Visit:
        visit_id = self.visit_ids.add(chosen.encounter_id or chosen.id, to_identifier(name, fallback="V"))
        forms = tuple(
            dict.fromkeys(form for instance in instances for form in self._forms_of(instance.activity_ids, set()))
        )
        epoch = self.epoch_ids.get(chosen.epoch_id or "")
        if placement is None:
            self.report.note(
                self.source.pointers[chosen.id],
                f"no timing reaches {chosen.name}: visit {visit_id} has no nominal day (unscheduled)",
            )
            return Visit(id=visit_id, name=title, type=VisitType.UNSCHEDULED, epoch=epoch, forms=forms)
        day = study_day_at(placement.offset)
        kind = VisitType.SCREENING if day < 1 else VisitType.SCHEDULED
        late = placement.late
        if kind is VisitType.SCREENING and day + late >= 1:
            late = max(0, -1 - day)
            self.report.note(
                self.source.pointers[chosen.id],
                f"screening visit {visit_id}: window end moved to day -1 (a screening window ends before day 1)",
            )
        if (
            placement.timing is not None
            and not (placement.timing.window_lower or placement.timing.window_upper)
            and kind_of(placement.timing) != "fixed"
        ):
            self.report.note(
                self.source.pointers[placement.timing.id],
                f"no window in the timing: visit {visit_id} must happen on day {day}; widen it if the protocol allows",
            )
        self.report.map(
            self.source.pointers[chosen.id],
            f"visit {visit_id}, day {day}, window -{placement.early}/+{late}",
            "Encounter",
        )
        return Visit(
            id=visit_id,
            name=title,
            type=kind,
            day=day,
            window=Window(early=placement.early, late=late),
            epoch=epoch,
            forms=forms,
        )

    def _conditional(self, timeline: ScheduleTimeline) -> Visit:
        visit_id = self.visit_ids.add(timeline.id, to_identifier(timeline.name, fallback="V"))
        forms = tuple(
            dict.fromkeys(
                form for instance in timeline.instances for form in self._forms_of(instance.activity_ids, set())
            )
        )
        condition = f" when: {timeline.entry_condition}" if timeline.entry_condition else ""
        self.report.note(
            self.source.pointers[timeline.id],
            f"conditional timeline {timeline.name}: unscheduled, repeating visit {visit_id}{condition}",
        )
        return Visit(id=visit_id, name=timeline.title, type=VisitType.UNSCHEDULED, repeating=True, forms=forms)

    def _sub_timelines(self, instances: list[ScheduledInstance]) -> set[str]:
        """Timelines that an activity of the main timeline expands into (transitively)."""
        found: set[str] = set()
        pending = [activity for instance in instances for activity in instance.activity_ids]
        while pending:
            activity = self.activities[pending.pop()]
            if activity.timeline_id and activity.timeline_id not in found:
                found.add(activity.timeline_id)
                pending += [a for i in self.timelines[activity.timeline_id].instances for a in i.activity_ids]
        return found

    def _forms_of(self, activity_ids: list[str], seen: set[str]) -> Iterator[str]:
        """The forms of activities, followed by the forms of their sub-timelines' activities."""
        for activity_id in activity_ids:
            if activity_id in seen:
                continue
            seen.add(activity_id)
            if activity_id in self.forms.form_of:
                yield self.forms.form_of[activity_id]
            timeline = self.timelines.get(self.activities[activity_id].timeline_id or "")
            if timeline is not None:
                for instance in timeline.instances:
                    yield from self._forms_of(instance.activity_ids, seen)


def _in_order(timeline: ScheduleTimeline) -> list[ScheduledInstance]:
    """The instances from the entry along defaultConditionId, then any the chain does not reach."""
    by_id = {instance.id: instance for instance in timeline.instances}
    ordered: list[ScheduledInstance] = []
    current = by_id.get(timeline.entry_id or "")
    while current is not None and current not in ordered:
        ordered.append(current)
        current = by_id.get(current.default_condition_id or "")
    return ordered + [instance for instance in timeline.instances if instance not in ordered]
