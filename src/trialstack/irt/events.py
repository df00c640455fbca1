"""Events of the irt context: the study's `irt` streams `<study>/randomization` and `<study>/supply`.

The names are part of the public event contract. What reveals treatment is registered `blinded` (only unblinded
roles and the system read it, in the feed, the stream, audit views and exports alike): the arm a subject was
allocated, the treatment in each kit, the per-treatment quantities of a resupply. Everything else carries kit and
randomization numbers only, which reveal nothing: kit numbers are drawn at random across treatments.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type

CONTEXT = "irt"


class IrtEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@event_type(CONTEXT)
class RandomizationListGenerated(IrtEvent):
    """A randomization list (or, for minimization, the secret seed) sealed in the vault, readable only by the
    system and unblinded roles. `checksum` is the SHA-256 of the sealed document; `seed_commitment` the SHA-256 of
    the secret seed (None for an imported list). `strata`: the entries it adds to each stratum."""

    list_id: str
    scheme: str
    source: str
    strata: dict[str, int]
    checksum: str
    seed_commitment: str | None
    study_version: str
    file_checksum: str | None = None
    """For an imported list: the SHA-256 of the file as received, which the importer confirmed."""


@event_type(CONTEXT)
class SubjectRandomized(IrtEvent):
    """The blinded part of a randomization: the number, the stratum and the values that decided it."""

    subject_id: str
    site_id: str
    number: str
    stratum: str
    factors: dict[str, str]
    values: dict[str, str | None]
    scheme: str
    randomized_on: str
    study_version: str


@event_type(CONTEXT, blinded=True)
class TreatmentAllocated(IrtEvent):
    """The unblinded part: the arm, and how it was chosen (list entry, or minimization's imbalance per arm)."""

    subject_id: str
    number: str
    arm: str
    list_id: str | None = None
    position: int | None = None
    imbalance: dict[str, str] | None = None
    preferred: bool | None = None


@event_type(CONTEXT)
class EmergencyUnblinded(IrtEvent):
    """An investigator broke the blind for one subject; the arm was shown to that user only, never recorded here."""

    subject_id: str
    number: str
    site_id: str
    username: str
    role: str
    reason: str
    unblinded_on: str


class KitRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kit: str
    treatment: str
    lot: str
    expiry: str


@event_type(CONTEXT, blinded=True)
class KitsRegistered(IrtEvent):
    """Kits received into a depot from a kit list (`generated` from a secret seed, or `imported`)."""

    depot: str
    kits: list[KitRecord]
    source: str
    checksum: str


@event_type(CONTEXT)
class ShipmentRequested(IrtEvent):
    """Kits picked at a depot for a site (first expiry first out); `reason`: initial, resupply or manual."""

    shipment_id: str
    depot: str
    site_id: str
    kits: list[str]
    reason: str
    requested_on: str


@event_type(CONTEXT)
class ShipmentDispatched(IrtEvent):
    shipment_id: str
    dispatched_on: str
    tracking: str | None = None


@event_type(CONTEXT)
class ShipmentReceived(IrtEvent):
    """The site confirmed the kits it received; `missing` are kits of the shipment that did not arrive."""

    shipment_id: str
    site_id: str
    received_on: str
    kits: list[str]
    missing: list[str]
    temperature_excursion: bool
    note: str | None = None


@event_type(CONTEXT)
class KitsQuarantined(IrtEvent):
    kits: list[str]
    reason: str
    shipment_id: str | None = None


@event_type(CONTEXT)
class KitsReleased(IrtEvent):
    """Quarantined kits assessed as usable (e.g. the excursion was within the product's stability data)."""

    kits: list[str]
    reason: str


@event_type(CONTEXT)
class KitsRejected(IrtEvent):
    """Quarantined kits assessed as unusable: never dispensed, to be returned for destruction."""

    kits: list[str]
    reason: str


@event_type(CONTEXT)
class KitDispensed(IrtEvent):
    kit: str
    subject_id: str
    site_id: str
    visit: str
    dispensed_on: str
    study_version: str


@event_type(CONTEXT)
class KitReturned(IrtEvent):
    """Drug accountability: what came back of a dispensed kit (`units_returned` counted by the site)."""

    kit: str
    subject_id: str
    returned_on: str
    units_returned: int | None = None
    condition: str


class TreatmentNeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    treatment: str
    usable: int
    predicted: int
    requested: int


@event_type(CONTEXT, blinded=True)
class ResupplyTriggered(IrtEvent):
    """A site fell below its minimum (or will, given the visits due within the prediction window); `needs` per
    treatment reveal which arms the site's subjects are on, hence blinded. `shortfall` kits the depot lacked."""

    site_id: str
    reason: str
    needs: list[TreatmentNeed]
    shipment_id: str | None
    shortfall: int


RANDOMIZATION_EVENTS: tuple[type[IrtEvent], ...] = (
    RandomizationListGenerated,
    SubjectRandomized,
    TreatmentAllocated,
    EmergencyUnblinded,
)
SUPPLY_EVENTS: tuple[type[IrtEvent], ...] = (
    KitsRegistered,
    ShipmentRequested,
    ShipmentDispatched,
    ShipmentReceived,
    KitsQuarantined,
    KitsReleased,
    KitsRejected,
    KitDispensed,
    KitReturned,
    ResupplyTriggered,
)
