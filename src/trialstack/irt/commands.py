"""Commands of the irt context."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RandomizeSubject:
    subject_id: str


@dataclass(frozen=True)
class UnblindSubject:
    """Emergency unblinding: the investigator has re-authenticated; `reason` is the medical need."""

    subject_id: str
    reason: str


@dataclass(frozen=True)
class KitEntry:
    kit: str
    treatment: str
    lot: str
    expiry: str
    line: int | None = None
    """Where the kit came from in an imported file (1-based, header included), for error messages."""


@dataclass(frozen=True)
class RegisterKits:
    depot: str
    kits: tuple[KitEntry, ...]
    source: str
    checksum: str


@dataclass(frozen=True)
class RequestShipment:
    site_id: str
    quantities: dict[str, int]
    """Kits per treatment (arm id)."""
    depot: str | None = None
    reason: str = "manual"


@dataclass(frozen=True)
class DispatchShipment:
    shipment_id: str
    tracking: str | None = None


@dataclass(frozen=True)
class ReceiveShipment:
    shipment_id: str
    kits: tuple[str, ...]
    temperature_excursion: bool
    note: str | None = None


@dataclass(frozen=True)
class AssessQuarantine:
    """Release quarantined kits as usable (`release` True) or reject them; `reason` says on what evidence."""

    kits: tuple[str, ...]
    release: bool
    reason: str


@dataclass(frozen=True)
class DispenseKits:
    """Dispense at `visit`; the system picks the kits unless the site scanned `kit` (checked the same way)."""

    subject_id: str
    visit: str
    kit: str | None = None


@dataclass(frozen=True)
class ReturnKit:
    kit: str
    units_returned: int | None
    condition: str
