"""Events of the ops context: one `ops` stream per study for its KRIs (`<study>/kris`).

The names are part of the public event contract. A KRI is folded from other contexts' events that reveal no
treatment, so nothing here is blinded (docs/decisions/0013-kris.md).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type

CONTEXT = "ops"
STUDY_WIDE = "*"
"""The `site_id` of a study-wide figure."""


class OpsEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@event_type(CONTEXT)
class KriThresholdCrossed(OpsEvent):
    """A KRI's status at a site (or study-wide: `site_id` "*") changed, as of a day: `value` is the figure then
    (decimal text), `threshold` the level it reached or left (None when it has no value any more), `direction`
    which way is worse, `method` `threshold` (the study's levels) or `funnel` (its funnel plot's control limits)."""

    kri: str
    site_id: str
    from_status: str
    to_status: str
    value: str | None
    threshold: str | None
    direction: str
    method: str
    as_of: str


OPS_EVENTS: tuple[type[OpsEvent], ...] = (KriThresholdCrossed,)
