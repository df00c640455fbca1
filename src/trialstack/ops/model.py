"""A study's KRI watch, folded from its `ops` stream, and the decision of which crossings to record. Pure.

The state is the status last recorded per KRI and site; a check compares the figures of the day with it, so a
crossing is recorded once, when it happens, not at every check. A KRI never recorded counts as `ok`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType

from trialstack.ops import events as ev
from trialstack.ops.kris import CATALOGUE, Figure
from trialstack.protocol.definition_kris import Direction

QUIET = "ok"
"""The status a KRI has until a crossing is recorded."""


@dataclass(frozen=True)
class KriWatch:
    study_id: str
    statuses: Mapping[tuple[str, str], str] = field(default_factory=lambda: MappingProxyType({}))
    """(KRI, site) → the status last recorded."""
    version: int = 0

    def status(self, kri: str, site_id: str) -> str:
        return self.statuses.get((kri, site_id), QUIET)


def evolve(event: ev.OpsEvent, state: KriWatch) -> KriWatch:
    match event:
        case ev.KriThresholdCrossed():
            statuses = {**state.statuses, (event.kri, event.site_id): event.to_status}
            return replace(state, statuses=MappingProxyType(statuses))
    return state


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _direction(figure: Figure) -> Direction:
    side = figure.detail.get("funnel", {}).get("side")
    if side is not None:
        return Direction.BELOW if side == "low" else Direction.ABOVE
    return CATALOGUE[figure.kri].direction


def decide_check(state: KriWatch, figures: Sequence[Figure], as_of: date) -> list[ev.KriThresholdCrossed]:
    """A KriThresholdCrossed for each figure whose status differs from the one last recorded for it.

    A figure without a status (`none`: no threshold, or no value) is recorded only to clear an earlier warning or
    breach; one that was never anything but quiet records nothing.
    """
    decided: list[ev.KriThresholdCrossed] = []
    for figure in figures:
        before = state.status(figure.kri.value, figure.site_id)
        if figure.status == before or (figure.status == "none" and before == QUIET):
            continue
        decided.append(
            ev.KriThresholdCrossed(
                kri=figure.kri.value, site_id=figure.site_id, from_status=before, to_status=figure.status,
                value=_text(figure.value), threshold=_text(figure.threshold), direction=_direction(figure).value,
                method=CATALOGUE[figure.kri].method, as_of=as_of.isoformat(),
            )
        )  # fmt: skip
    return decided
