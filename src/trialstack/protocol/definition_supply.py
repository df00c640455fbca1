"""Drug supply: depots, the visits that dispense, how long before expiry a kit may no longer go out, resupply.

A kit holds the treatment of one arm (its `treatment` is the arm id); the kit list itself (numbers, lots, expiry
dates) is physical inventory, imported or generated with `trialstack irt kits`, not part of the protocol.
"""

from __future__ import annotations

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from trialstack.protocol.definition_base import Identifier, ProtocolModel, SiteId, Text


class Depot(ProtocolModel):
    id: Identifier
    name: Text
    country: str | None = None


class Dispensing(ProtocolModel):
    """At `visit`, the system picks `kits` kits of the subject's treatment at the subject's site."""

    visit: Identifier
    kits: PositiveInt = 1


class ResupplyLevels(ProtocolModel):
    """Per site and treatment: below `minimum` usable kits a shipment brings the site up to `maximum`.

    `predict_days`: kits the site's subjects will need at dispensing visits due within that many days are counted
    as already gone, so a shipment leaves before the shelf is empty (0: only the minimum triggers).
    """

    minimum: NonNegativeInt = 2
    maximum: PositiveInt = 6
    predict_days: NonNegativeInt = 14
    sites: tuple[SiteId, ...] = ()
    """The sites these levels apply to; empty: every site without levels of its own."""

    @model_validator(mode="after")
    def _ordered(self) -> ResupplyLevels:
        if self.maximum < self.minimum:
            raise ValueError(f"maximum {self.maximum} is below minimum {self.minimum}")
        return self


class Supply(ProtocolModel):
    depots: tuple[Depot, ...] = Field(min_length=1)
    dispensing: tuple[Dispensing, ...] = Field(min_length=1)
    do_not_dispense_days: NonNegativeInt = 14
    """A kit expiring within this many days of the visit is never dispensed (nor shipped to a site)."""
    resupply: tuple[ResupplyLevels, ...] = (ResupplyLevels(),)

    def dispensing_at(self, visit_id: str) -> Dispensing | None:
        return next((d for d in self.dispensing if d.visit == visit_id), None)

    def levels_for(self, site_id: str) -> ResupplyLevels:
        own = next((levels for levels in self.resupply if site_id in levels.sites), None)
        default = next((levels for levels in self.resupply if not levels.sites), ResupplyLevels())
        return own or default
