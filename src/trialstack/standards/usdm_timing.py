"""USDM timings -> day offsets from the anchor and windows, for every instance the timings reach.

A timing places its `relativeFromScheduledInstanceId` a `value` (ISO 8601) Before or After its
`relativeToScheduledInstanceId`; "Fixed Reference" marks the anchor. Offsets propagate from the anchor
in both directions until no timing adds anything; timings that never connect are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialstack.standards.durations import DurationError, parse_days
from trialstack.standards.report import MappingReport
from trialstack.standards.usdm_model import ScheduledInstance, ScheduleTimeline, Timing
from trialstack.standards.usdm_source import UsdmSource


@dataclass(frozen=True)
class Placement:
    offset: int
    early: int
    late: int
    timing: Timing | None


class TimingResolver:
    def __init__(self, source: UsdmSource, report: MappingReport) -> None:
        self.source = source
        self.report = report

    def placements(self, timeline: ScheduleTimeline) -> tuple[dict[str, Placement], ScheduledInstance]:
        """Offsets in days from the anchor for every instance the timings reach."""
        instances = {instance.id: instance for instance in timeline.instances}
        fixed = [timing for timing in timeline.timings if kind_of(timing) == "fixed"]
        if fixed:
            anchor = instances[fixed[0].relative_from_scheduled_instance_id]
        else:
            anchor = instances.get(timeline.entry_id or "") or timeline.instances[0]
            self.report.note(
                self.source.pointers[timeline.id],
                f"no Fixed Reference timing: the entry instance {anchor.name} is study day 1",
            )
        placements = {
            anchor.id: Placement(0, *self._window(fixed[0]) if fixed else (0, 0), fixed[0] if fixed else None)
        }
        pending = [timing for timing in timeline.timings if kind_of(timing) != "fixed"]
        progress = True
        while pending and progress:
            progress = False
            for timing in list(pending):
                to = timing.relative_to_scheduled_instance_id or anchor.id
                frm = timing.relative_from_scheduled_instance_id
                if to in placements and frm not in placements:
                    placements[frm] = Placement(
                        placements[to].offset + self._offset(timing), *self._window(timing), timing
                    )
                elif frm in placements and to not in placements:
                    placements[to] = Placement(placements[frm].offset - self._offset(timing), 0, 0, None)
                elif not (to in placements and frm in placements):
                    continue
                pending.remove(timing)
                progress = True
                self.report.map(
                    self.source.pointers[timing.id],
                    f"{instances[frm].name} {timing.value} {timing.type.decode.lower()} {_name(instances, to)}",
                    "Timing",
                )
        for timing in pending:
            self.report.skip(self.source.pointers[timing.id], "timing not connected to the anchor: not used")
        return placements, anchor

    def _offset(self, timing: Timing) -> int:
        days = self._days(timing.value, timing, "value")
        if timing.relative_to_from is not None and timing.relative_to_from.decode.lower() not in ("start to start", ""):
            self.report.note(
                self.source.pointers[timing.id],
                f"{timing.relative_to_from.decode} is taken as start to start: visits are scheduled by day",
            )
        kind = kind_of(timing)
        return -abs(days) if kind == "before" else abs(days) if kind == "after" else days

    def _window(self, timing: Timing) -> tuple[int, int]:
        return abs(self._days(timing.window_lower, timing, "windowLower")), abs(
            self._days(timing.window_upper, timing, "windowUpper")
        )

    def _days(self, text: str | None, timing: Timing, key: str) -> int:
        if not text:
            return 0
        try:
            days = parse_days(text)
        except DurationError as error:
            self.report.skip(self.source.pointer(timing.id, key), f"{error}; 0 days used")
            return 0
        if days.note:
            self.report.note(self.source.pointer(timing.id, key), days.note)
        return days.days


def kind_of(timing: Timing) -> str:
    decode = timing.type.decode.strip().lower()
    return (
        "fixed"
        if decode.startswith("fixed")
        else "before"
        if decode == "before"
        else "after"
        if decode == "after"
        else decode
    )


def _name(instances: dict[str, ScheduledInstance], instance_id: str) -> str:
    return instances[instance_id].name if instance_id in instances else instance_id
