"""ODM 2.0 timing constraints -> the anchor visit and each visit's day offset and window.

A RelativeTimingConstraint says "successor starts `target` after predecessor"; a TransitionTimingConstraint
says the same along a workflow transition. The anchor is the visit the constraints hang from (the one that
is only ever a predecessor). Offsets propagate outward from it, breadth first; at each step a constraint
measured directly (relative) wins over one on a transition, because our windows are relative to the
nominal day, not to the previous visit's actual date. Every conflict and approximation becomes a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trialstack.standards.durations import DurationError, parse_days
from trialstack.standards.odm_meta import Timing


@dataclass(frozen=True)
class Placement:
    """A visit's offset in days from the anchor date and its window, and the constraint that set it."""

    offset: int
    early: int
    late: int
    source: str


@dataclass
class TimingResult:
    anchor: str | None
    placements: dict[str, Placement]
    notes: list[tuple[str, str]]  # (where, what was approximated, chosen or conflicting)


def _days(text: str | None, where: str, notes: list[tuple[str, str]]) -> int:
    if not text:
        return 0
    try:
        days = parse_days(text)
    except DurationError as error:
        notes.append((where, f"{error}; 0 days used"))
        return 0
    if days.note:
        notes.append((where, days.note))
    return days.days


def choose_anchor(timings: Sequence[Timing], order: Sequence[str]) -> str | None:
    """The visit every constraint hangs from: a predecessor that is never a successor (the busiest one)."""
    successors = {timing.successor for timing in timings}
    roots = [timing.predecessor for timing in timings if timing.predecessor not in successors]
    if not roots:
        return None
    position = {oid: index for index, oid in enumerate(order)}
    return min(set(roots), key=lambda oid: (-roots.count(oid), position.get(oid, len(position))))


def resolve(timings: Sequence[Timing], anchor: str, order: Sequence[str]) -> TimingResult:
    """Place every visit reachable from `anchor` through the constraints (both directions)."""
    notes: list[tuple[str, str]] = []
    placements = {anchor: Placement(0, 0, 0, "anchor")}
    position = {timing.oid: index for index, timing in enumerate(timings)}
    frontier = {anchor}
    while frontier:
        candidates = [t for t in timings if (t.predecessor in frontier) != (t.successor in frontier)]
        candidates.sort(key=lambda t: (not t.direct, position[t.oid]))
        reached: set[str] = set()
        for timing in candidates:
            forward = timing.predecessor in placements and timing.successor not in placements
            backward = timing.successor in placements and timing.predecessor not in placements
            if not (forward or backward):
                continue
            where = timing.where.path
            if timing.relation != "StartToStart":
                notes.append((where, f"{timing.relation} is taken as StartToStart: visits are scheduled by day"))
            offset = _days(timing.target, where, notes)
            if forward:
                base = placements[timing.predecessor].offset
                early = _days(timing.pre_window, where, notes)
                late = _days(timing.post_window, where, notes)
                placements[timing.successor] = Placement(base + offset, early, late, timing.oid)
                reached.add(timing.successor)
            else:
                placements[timing.predecessor] = Placement(
                    placements[timing.successor].offset - offset, 0, 0, timing.oid
                )
                reached.add(timing.predecessor)
                if timing.pre_window or timing.post_window:
                    notes.append(
                        (where, f"the window is around {timing.successor}, not {timing.predecessor}: not mapped")
                    )
        frontier = reached
    notes += _conflicts(timings, placements)
    return TimingResult(anchor, placements, notes)


def _conflicts(timings: Sequence[Timing], placements: dict[str, Placement]) -> list[tuple[str, str]]:
    """Constraints that were not used and disagree with the placement that was kept."""
    found = []
    for timing in timings:
        successor, predecessor = placements.get(timing.successor), placements.get(timing.predecessor)
        if successor is None or predecessor is None or successor.source == timing.oid:
            continue
        scratch: list[tuple[str, str]] = []
        offset = predecessor.offset + _days(timing.target, "", scratch)
        early, late = _days(timing.pre_window, "", scratch), _days(timing.post_window, "", scratch)
        if (offset, early, late) != (successor.offset, successor.early, successor.late):
            found.append(
                (
                    timing.where.path,
                    f"puts {timing.successor} {offset} days after the anchor (-{early}/+{late}); "
                    f"{successor.source} gives {successor.offset} days "
                    f"(-{successor.early}/+{successor.late}), which is kept",
                )
            )
    return found
