"""ODM StudyEventDefs, arms and epochs -> the schedule: visits, their days and windows, the anchor.

Where the days come from, in order: TrialStack aliases (our own 1.3.2 export), ODM 2.0 timing
constraints, else nothing. ODM 1.3.2 has no timing at all: the first scheduled event becomes the anchor
(study day 1, no window) and the other scheduled events are kept without a nominal day, as unscheduled
visits, because inventing days would flag every real visit as out of window. The report lists each one
so the study builder can add days and windows. Common events hold subject-level forms: their forms are
log forms, unless a form is also collected at a visit (then the event is kept as an unscheduled visit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trialstack.protocol.definition import Arm, Epoch, Schedule, Visit, VisitType, Window
from trialstack.protocol.definition_base import CheckAction
from trialstack.protocol.schedule import study_day_at
from trialstack.standards import aliases
from trialstack.standards.identifiers import IdentifierMap
from trialstack.standards.odm_forms import FormMapper, FormPlan
from trialstack.standards.odm_meta import EventDef, OdmMeta
from trialstack.standards.odm_timing import Placement, choose_anchor, resolve
from trialstack.standards.odm_xml import Where
from trialstack.standards.report import MappingReport


@dataclass
class ScheduleResult:
    schedule: Schedule | None
    arms: list[Arm] = field(default_factory=list)
    epochs: list[Epoch] = field(default_factory=list)
    visit_where: dict[str, Where] = field(default_factory=dict)


class ScheduleMapper:
    def __init__(self, meta: OdmMeta, report: MappingReport, forms: FormMapper) -> None:
        self.meta = meta
        self.report = report
        self.forms = forms
        self.visit_ids = IdentifierMap(("SE", "EV", "VISIT"), fallback="V")
        self.epoch_ids = IdentifierMap(("EP", "EPOCH"), fallback="E")
        self.arm_ids = IdentifierMap(("ARM",), fallback="A")

    def build(self) -> ScheduleResult:
        result = ScheduleResult(None)
        result.arms, result.epochs = self._structure()
        events = [self.meta.events[oid] for oid in self.meta.event_order if oid in self.meta.events]
        forms_of = {event.oid: self._forms(event) for event in events}
        scheduled_forms = {form for event in events if event.type != "Common" for form in forms_of[event.oid]}
        log_forms: list[str] = []
        visit_events = []
        for event in events:
            if event.type == "Common" and not set(forms_of[event.oid]) & scheduled_forms:
                log_forms += [form for form in forms_of[event.oid] if form not in log_forms]
                self.report.map(event.where.path, "log forms " + ", ".join(forms_of[event.oid]), "Common event")
                continue
            if event.type == "Common":
                self.report.note(
                    event.where.path,
                    "Common event kept as an unscheduled visit: its forms are also collected at visits",
                )
            visit_events.append(event)
        at_visits = {form for event in visit_events for form in forms_of[event.oid]}
        for plan in self.forms.plans:
            if plan.id not in at_visits and plan.id not in log_forms:
                log_forms.append(plan.id)
                self.report.note(
                    plan.where.path, f"form {plan.id} is not collected at any StudyEventDef: imported as a log form"
                )
        if not visit_events:
            return result
        placements, anchor = self._timing(visit_events)
        visits = [
            self._visit(event, forms_of[event.oid], placements.get(event.oid), event.oid == anchor)
            for event in visit_events
        ]
        result.visit_where = {visit.id: event.where for visit, event in zip(visits, visit_events, strict=True)}
        result.schedule = Schedule(anchor=self.visit_ids[anchor], visits=tuple(visits), log_forms=tuple(log_forms))
        return result

    def _structure(self) -> tuple[list[Arm], list[Epoch]]:
        meta = self.meta
        arms = [Arm(id=self.arm_ids.add(arm.oid), name=arm.name) for arm in meta.arms]
        epochs = [Epoch(id=self.epoch_ids.add(epoch.oid), name=epoch.name) for epoch in meta.epochs]
        for context, name in meta.protocol_aliases.items():
            if context.startswith(aliases.ARM_PREFIX):
                arms.append(Arm(id=self.arm_ids.add(context, context.removeprefix(aliases.ARM_PREFIX)), name=name))
            elif context.startswith(aliases.EPOCH_PREFIX):
                epochs.append(
                    Epoch(id=self.epoch_ids.add(context, context.removeprefix(aliases.EPOCH_PREFIX)), name=name)
                )
        for arm in meta.arms:
            self.report.map(arm.where.path, f"arm {self.arm_ids[arm.oid]}")
        for epoch in meta.epochs:
            self.report.map(epoch.where.path, f"epoch {self.epoch_ids[epoch.oid]}")
        return arms, epochs

    def _forms(self, event: EventDef) -> list[str]:
        """Our form ids for an event's form references, in order (a split form brings its rows along)."""
        found: list[str] = []
        for ref in event.forms:
            if ref.condition:
                self.report.skip(
                    ref.where.path,
                    f"collection exception {ref.condition} on a whole form is not mapped: the form is always due",
                )
            for plan in self._plans(ref.oid, ref.where):
                if plan.id not in found:
                    found.append(plan.id)
        return found

    def _plans(self, oid: str, where: Where) -> list[FormPlan]:
        if oid in self.forms.by_source:
            return self.forms.by_source[oid]
        # ODM 2.0: an event may point at a Section group; the form holding it is what is collected.
        holders = [source for source, plans in self.forms.by_source.items() if self._contains(source, oid)]
        if holders:
            self.report.note(
                where.path, f"{oid} is not a Form group; the form {holders[0]} that contains it is scheduled"
            )
            return self.forms.by_source[holders[0]]
        group = self.meta.groups[oid]
        self.report.note(where.path, f"item group {oid} is scheduled directly: imported as a form")
        return self.forms.plan(oid, group.name, group.repeating, group.children, group.where, group.aliases)

    def _contains(self, source: str, oid: str) -> bool:
        forms = self.forms.odm_forms()
        pending = [ref.oid for ref in forms[source][2] if ref.kind == "group"] if source in forms else []
        seen: set[str] = set()
        while pending:
            current = pending.pop()
            if current == oid:
                return True
            if current in seen or current not in self.meta.groups:
                continue
            seen.add(current)
            pending += [ref.oid for ref in self.meta.groups[current].children if ref.kind == "group"]
        return False

    def _timing(self, events: list[EventDef]) -> tuple[dict[str, Placement], str]:
        """Placements by event OID and the anchor event, from aliases, ODM 2.0 timings, or the default."""
        scheduled = [event.oid for event in events if event.type == "Scheduled"] or [events[0].oid]
        by_alias = {e.oid: e for e in events if aliases.DAY in e.aliases}
        anchor_alias = self.meta.protocol_aliases.get(aliases.ANCHOR)
        if by_alias:
            anchor = next((e.oid for e in events if e.aliases.get(aliases.ID) == anchor_alias), scheduled[0])
            return {oid: _alias_placement(event) for oid, event in by_alias.items()}, anchor
        order = [event.oid for event in events]
        timings = [t for t in self.meta.timings if t.predecessor in order and t.successor in order]
        chosen = choose_anchor(timings, order) if timings else None
        if chosen is None:
            anchor = scheduled[0]
            self.report.note(
                self.meta.events[anchor].where.path,
                f"no visit timing in the file: {anchor} is the anchor (study day 1, no window)",
            )
            return {anchor: Placement(0, 0, 0, "default")}, anchor
        anchor = chosen
        result = resolve(timings, anchor, order)
        for where, note in result.notes:
            self.report.note(where, note)
        for timing in timings:
            self.report.map(timing.where.path, f"{timing.successor} relative to {timing.predecessor}")
        return result.placements, anchor

    def _visit(self, event: EventDef, forms: list[str], placement: Placement | None, anchor: bool) -> Visit:
        visit_id = self.visit_ids.add(event.oid, event.aliases.get(aliases.ID))
        epoch = self._epoch(event)
        repeating = event.repeating
        out_of_window = CheckAction(event.aliases.get(aliases.OUT_OF_WINDOW, "query"))
        base = {"id": visit_id, "name": event.name, "repeating": repeating, "epoch": epoch, "forms": tuple(forms)}
        self.report.map(event.where.path, f"visit {visit_id}")
        if anchor and event.type != "Scheduled":
            self.report.note(event.where.path, f"{event.type} event {visit_id} is the anchor: scheduled on study day 1")
            placement = placement or Placement(0, 0, 0, "anchor")
        elif event.type in ("Unscheduled", "Common"):
            return Visit(**base, type=VisitType.UNSCHEDULED, out_of_window=out_of_window)
        if placement is None:
            if event.aliases.get(aliases.VISIT_TYPE) == VisitType.END_OF_STUDY.value:
                return Visit(**base, type=VisitType.END_OF_STUDY, out_of_window=out_of_window)
            self.report.note(
                event.where.path,
                f"no timing for scheduled visit {visit_id}: imported without a nominal day (as unscheduled); "
                "add its day and window",
            )
            return Visit(**base, type=VisitType.UNSCHEDULED, out_of_window=out_of_window)
        kind = VisitType(
            event.aliases.get(aliases.VISIT_TYPE)
            or (VisitType.SCREENING if placement.offset < 0 else VisitType.SCHEDULED)
        )
        day = study_day_at(placement.offset)
        late = placement.late
        if kind is VisitType.SCREENING and day + late >= 1:
            late = max(0, -1 - day)
            self.report.note(
                event.where.path,
                f"screening visit {visit_id}: window end moved to day -1 (a screening window ends before day 1)",
            )
        return Visit(
            **base, type=kind, day=day, window=Window(early=placement.early, late=late), out_of_window=out_of_window
        )

    def _epoch(self, event: EventDef) -> str | None:
        if aliases.EPOCH in event.aliases:
            return (
                self.epoch_ids.get(aliases.EPOCH_PREFIX + event.aliases[aliases.EPOCH]) or event.aliases[aliases.EPOCH]
            )
        oid = self.meta.event_epochs.get(event.oid)
        if oid is None:
            return None
        epoch = self.epoch_ids.get(oid)
        if epoch is None:
            self.report.skip(event.where.path, f"epoch {oid} is not declared in StudyStructure")
        return epoch


def _alias_placement(event: EventDef) -> Placement:
    day = int(event.aliases[aliases.DAY])
    offset = day - 1 if day > 0 else day
    return Placement(
        offset, int(event.aliases.get(aliases.EARLY, "0")), int(event.aliases.get(aliases.LATE, "0")), "alias"
    )
