"""Kits and supply: the study's `supply` stream state, `evolve`, and the decisions. Pure.

A kit is at a depot, in transit, available at a site, quarantined, dispensed, returned, rejected or missing. The
system picks every kit that moves (first expiry first out, never one that expires within the do-not-dispense days),
so a blinded site only ever handles kit numbers, and a refusal never names a treatment to a blinded user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType

from trialstack.consent.events import ConsentView, gate_refusal
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.irt import commands as cmd
from trialstack.irt import events as ev
from trialstack.irt.draws import Draws
from trialstack.irt.frozen import FrozenMap, with_entries
from trialstack.irt.model import ENROLLED, Allocation, SubjectStatus
from trialstack.protocol.definition import GatedAction, StudyDefinition, Supply

MAX_LABEL = 40
"""The longest kit number or lot kept (as printed on a label)."""


class SupplyRefused(DomainRuleViolation):
    code = "supply-refused"


class KitStatus(StrEnum):
    AT_DEPOT = "at_depot"
    IN_TRANSIT = "in_transit"
    AVAILABLE = "available"
    QUARANTINED = "quarantined"
    DISPENSED = "dispensed"
    RETURNED = "returned"
    REJECTED = "rejected"
    MISSING = "missing"


@dataclass(frozen=True)
class Kit:
    kit: str
    treatment: str
    lot: str
    expiry: date
    location: str
    status: KitStatus = KitStatus.AT_DEPOT
    shipment_id: str | None = None
    subject_id: str | None = None
    visit: str | None = None


@dataclass(frozen=True)
class Shipment:
    shipment_id: str
    depot: str
    site_id: str
    kits: tuple[str, ...]
    reason: str
    status: str = "requested"


@dataclass(frozen=True)
class SupplyState:
    study_id: str
    version: int = 0
    kits: FrozenMap[str, Kit] = field(default_factory=FrozenMap)
    shipments: Mapping[str, Shipment] = field(default_factory=lambda: MappingProxyType({}))
    dispensed: FrozenMap[tuple[str, str], tuple[str, ...]] = field(default_factory=FrozenMap)
    shortfalls: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Per site, the depot's shortfall last recorded without a shipment (so it is recorded once, not every day)."""

    def next_shipment_id(self) -> str:
        return f"SH-{len(self.shipments) + 1:04d}"


def _moved(state: SupplyState, kits: Iterable[str], **changes: object) -> SupplyState:
    moved = {number: replace(state.kits[number], **changes) for number in kits}  # type: ignore[arg-type]
    return replace(state, kits=state.kits.set(moved))


def _shipment(state: SupplyState, shipment: Shipment) -> SupplyState:
    return replace(state, shipments=with_entries(state.shipments, {shipment.shipment_id: shipment}))


def evolve(event: ev.IrtEvent, state: SupplyState) -> SupplyState:
    match event:
        case ev.KitsRegistered():
            added = {
                k.kit: Kit(k.kit, k.treatment, k.lot, date.fromisoformat(k.expiry), event.depot) for k in event.kits
            }
            return replace(state, kits=state.kits.set(added))
        case ev.ShipmentRequested():
            state = _shipment(
                state, Shipment(event.shipment_id, event.depot, event.site_id, tuple(event.kits), event.reason)
            )
            return _moved(state, event.kits, status=KitStatus.IN_TRANSIT, shipment_id=event.shipment_id)
        case ev.ShipmentDispatched():
            return _shipment(state, replace(state.shipments[event.shipment_id], status="dispatched"))
        case ev.ShipmentReceived():
            state = _shipment(state, replace(state.shipments[event.shipment_id], status="received"))
            state = _moved(state, event.kits, status=KitStatus.AVAILABLE, location=event.site_id)
            return _moved(state, event.missing, status=KitStatus.MISSING)
        case ev.KitsQuarantined():
            return _moved(state, event.kits, status=KitStatus.QUARANTINED)
        case ev.KitsReleased():
            return _moved(state, event.kits, status=KitStatus.AVAILABLE)
        case ev.KitsRejected():
            return _moved(state, event.kits, status=KitStatus.REJECTED)
        case ev.KitDispensed():
            state = _moved(
                state, [event.kit], status=KitStatus.DISPENSED, subject_id=event.subject_id, visit=event.visit
            )
            key = (event.subject_id, event.visit)
            kits = (*state.dispensed.get(key, ()), event.kit)
            return replace(state, dispensed=state.dispensed.set({key: kits}))
        case ev.KitReturned():
            return _moved(state, [event.kit], status=KitStatus.RETURNED)
        case ev.ResupplyTriggered():
            short = event.shortfall if event.shipment_id is None else 0
            return replace(state, shortfalls=with_entries(state.shortfalls, {event.site_id: short}))
    return state


def usable_until(day: date, supply: Supply) -> date:
    """A kit may go out on `day` only if it expires after this date."""
    return day + timedelta(days=supply.do_not_dispense_days)


def shippable_after(day: date, supply: Supply, site_id: str) -> date:
    """A kit may be shipped to a site on `day` only if it expires after this date: it must stay dispensable
    through the site's prediction window (a kit that would expire on the shelf is not sent)."""
    return usable_until(day, supply) + timedelta(days=supply.levels_for(site_id).predict_days)


def _supply(definition: StudyDefinition) -> Supply:
    if definition.supply is None:
        raise SupplyRefused("this study declares no drug supply", field="study")
    return definition.supply


def _kit(state: SupplyState, number: str, field_name: str = "kit") -> Kit:
    kit = state.kits.get(number)
    if kit is None:
        raise NotFound(f"kit {number} is not in this study's kit list", field=field_name)
    return kit


def generate_kits(
    draws: Draws, quantities: Mapping[str, int], lot: str, expiry: date, first_number: int
) -> list[cmd.KitEntry]:
    """A kit list: numbers `first_number`… handed out to treatments in random order, so no number reveals one."""
    treatments = [t for t in sorted(quantities) for _ in range(quantities[t])]
    order = draws.shuffled(treatments)
    return [
        cmd.KitEntry(str(first_number + n), treatment, lot, expiry.isoformat()) for n, treatment in enumerate(order)
    ]


def decide_register(state: SupplyState, definition: StudyDefinition, command: cmd.RegisterKits) -> list[ev.IrtEvent]:
    supply = _supply(definition)
    if command.depot not in {depot.id for depot in supply.depots}:
        known = ", ".join(depot.id for depot in supply.depots)
        raise InvalidInput(f"unknown depot {command.depot!r} (depots: {known})", field="depot")
    if not command.kits:
        raise InvalidInput("the kit list has no kits", field="kits")
    arms = {arm.id for arm in definition.arms}
    seen: dict[str, str] = {}
    records: list[ev.KitRecord] = []
    for n, entry in enumerate(command.kits, start=1):
        where = f"line {entry.line}" if entry.line is not None else f"kit {n}"
        number = entry.kit.strip()
        if not number:
            raise InvalidInput(f"{where}: the kit number is empty", field="kit")
        if len(number) > MAX_LABEL or len(entry.lot.strip()) > MAX_LABEL:
            raise InvalidInput(f"{where}: a kit number or lot has at most {MAX_LABEL} characters", field="kit")
        if number in seen:
            raise InvalidInput(f"{where}: kit number {number} is a duplicate of {seen[number]}", field="kit")
        if number in state.kits:
            raise InvalidInput(f"{where}: kit number {number} is already registered in this study", field="kit")
        seen[number] = where
        if entry.treatment not in arms:
            raise InvalidInput(
                f"{where}: treatment {entry.treatment!r} of kit {number} is not an arm ({', '.join(sorted(arms))})",
                field="treatment",
            )
        if not entry.lot.strip():
            raise InvalidInput(f"{where}: kit {number} has no lot", field="lot")
        try:
            expiry = date.fromisoformat(entry.expiry.strip())
        except ValueError:
            raise InvalidInput(f"{where}: expiry {entry.expiry!r} of kit {number} is not a date (YYYY-MM-DD)",
                               field="expiry") from None  # fmt: skip
        records.append(ev.KitRecord(kit=number, treatment=entry.treatment, lot=entry.lot.strip(), expiry=str(expiry)))
    return [ev.KitsRegistered(depot=command.depot, kits=records, source=command.source, checksum=command.checksum)]


def _pick(state: SupplyState, location: str, status: KitStatus, treatment: str, after: date) -> list[Kit]:
    """Kits of `treatment` at `location` in `status` expiring after `after`, first expiry first."""
    kits = [
        k for k in state.kits.each()
        if k.location == location and k.status is status and k.treatment == treatment and k.expiry > after
    ]  # fmt: skip
    return sorted(kits, key=lambda k: (k.expiry, k.kit))


def _depot(definition: StudyDefinition, supply: Supply, site_id: str, requested: str | None) -> str:
    if requested is not None:
        if requested not in {depot.id for depot in supply.depots}:
            raise InvalidInput(f"unknown depot {requested!r}", field="depot")
        return requested
    site = next((s for s in definition.sites if s.id == site_id), None)
    same_country = [d.id for d in supply.depots if site is not None and d.country == site.country]
    return (same_country or [supply.depots[0].id])[0]


def _site(definition: StudyDefinition, site_id: str) -> None:
    if site_id not in {site.id for site in definition.sites}:
        raise InvalidInput(f"unknown site {site_id!r}", field="site")


def decide_request_shipment(
    state: SupplyState, definition: StudyDefinition, command: cmd.RequestShipment, today: date
) -> list[ev.IrtEvent]:
    supply = _supply(definition)
    _site(definition, command.site_id)
    depot = _depot(definition, supply, command.site_id, command.depot)
    kits: list[str] = []
    for treatment, quantity in sorted(command.quantities.items()):
        if quantity < 0:
            raise InvalidInput(f"quantity of {treatment} is negative", field="quantities")
        available = _pick(state, depot, KitStatus.AT_DEPOT, treatment, shippable_after(today, supply, command.site_id))
        if len(available) < quantity:
            raise SupplyRefused(
                f"depot {depot} has {len(available)} usable kits of {treatment}, {quantity} requested",
                field="quantities",
            )
        kits += [k.kit for k in available[:quantity]]
    if not kits:
        raise InvalidInput("a shipment needs at least one kit", field="quantities")
    return [
        ev.ShipmentRequested(
            shipment_id=state.next_shipment_id(), depot=depot, site_id=command.site_id, kits=sorted(kits),
            reason=command.reason, requested_on=today.isoformat(),
        )
    ]  # fmt: skip


def _shipment_of(state: SupplyState, shipment_id: str) -> Shipment:
    shipment = state.shipments.get(shipment_id)
    if shipment is None:
        raise NotFound(f"no shipment {shipment_id}", field="shipment")
    return shipment


def decide_dispatch(state: SupplyState, command: cmd.DispatchShipment, today: date) -> list[ev.IrtEvent]:
    shipment = _shipment_of(state, command.shipment_id)
    if shipment.status != "requested":
        raise SupplyRefused(f"shipment {shipment.shipment_id} is already {shipment.status}", field="shipment")
    return [ev.ShipmentDispatched(shipment_id=shipment.shipment_id, dispatched_on=today.isoformat(),
                                  tracking=command.tracking)]  # fmt: skip


def decide_receive(state: SupplyState, command: cmd.ReceiveShipment, today: date) -> list[ev.IrtEvent]:
    """The site confirms what arrived; kits of a shipment with a temperature excursion go straight to quarantine."""
    shipment = _shipment_of(state, command.shipment_id)
    if shipment.status == "received":
        raise SupplyRefused(f"shipment {shipment.shipment_id} was already received", field="shipment")
    if shipment.status != "dispatched":
        raise SupplyRefused(f"shipment {shipment.shipment_id} has not been dispatched yet", field="shipment")
    stray = sorted(set(command.kits) - set(shipment.kits))
    if stray:
        raise InvalidInput(f"kits {', '.join(stray)} are not in shipment {shipment.shipment_id}", field="kits")
    if not command.kits:
        raise InvalidInput("confirm at least one kit received (or report the shipment lost)", field="kits")
    received = sorted(set(command.kits))
    decided: list[ev.IrtEvent] = [
        ev.ShipmentReceived(
            shipment_id=shipment.shipment_id, site_id=shipment.site_id, received_on=today.isoformat(), kits=received,
            missing=sorted(set(shipment.kits) - set(received)), temperature_excursion=command.temperature_excursion,
            note=command.note,
        )
    ]  # fmt: skip
    if command.temperature_excursion:
        decided.append(
            ev.KitsQuarantined(
                kits=received, shipment_id=shipment.shipment_id,
                reason="temperature excursion reported on receipt" + (f": {command.note}" if command.note else ""),
            )
        )  # fmt: skip
    return decided


def decide_assess(state: SupplyState, command: cmd.AssessQuarantine) -> list[ev.IrtEvent]:
    if not command.kits:
        raise InvalidInput("name the quarantined kits to assess", field="kits")
    if not command.reason.strip():
        raise InvalidInput("say on what evidence the kits are released or rejected", field="reason")
    for number in command.kits:
        kit = _kit(state, number, "kits")
        if kit.status is not KitStatus.QUARANTINED:
            raise SupplyRefused(f"kit {number} is not in quarantine ({kit.status.value})", field="kits")
    kits = sorted(set(command.kits))
    if command.release:
        return [ev.KitsReleased(kits=kits, reason=command.reason.strip())]
    return [ev.KitsRejected(kits=kits, reason=command.reason.strip())]


@dataclass(frozen=True)
class DispenseContext:
    allocation: Allocation | None
    subject: SubjectStatus
    consent: ConsentView
    visit_date: date | None


def _why_not(kit: Kit, site_id: str, supply: Supply, visit_date: date) -> str | None:
    """Why a kit the site scanned cannot go out, in words that never name a treatment."""
    if kit.status is KitStatus.QUARANTINED:
        return f"kit {kit.kit} is in quarantine until it is assessed"
    if kit.status is not KitStatus.AVAILABLE or kit.location != site_id:
        where = f" at {kit.location}" if kit.location != site_id else ""
        return f"kit {kit.kit} is not available at site {site_id} ({kit.status.value.replace('_', ' ')}{where})"
    if kit.expiry <= usable_until(visit_date, supply):
        return (
            f"kit {kit.kit} expires on {kit.expiry}, within the {supply.do_not_dispense_days} do-not-dispense days "
            f"of {visit_date}"
        )
    return None


def decide_dispense(
    state: SupplyState,
    definition: StudyDefinition,
    context: DispenseContext,
    command: cmd.DispenseKits,
    today: date,
    study_version: str,
) -> list[ev.IrtEvent]:
    supply = _supply(definition)
    dispensing = supply.dispensing_at(command.visit)
    if dispensing is None:
        visits = ", ".join(d.visit for d in supply.dispensing)
        raise SupplyRefused(
            f"nothing is dispensed at visit {command.visit} (dispensing visits: {visits})", field="visit"
        )
    allocation = context.allocation
    if allocation is None or allocation.arm is None:
        raise SupplyRefused(f"subject {command.subject_id} is not randomized", field="subject")
    if context.subject.status != ENROLLED:
        raise SupplyRefused(
            f"subject {command.subject_id} is {context.subject.status.replace('_', ' ')}", field="subject"
        )
    refused = gate_refusal(definition, context.consent, GatedAction.DISPENSING, today, "dispensing")
    if refused is not None:
        raise SupplyRefused(refused, field="consent")
    earlier = state.dispensed.get((command.subject_id, command.visit))
    if earlier:
        raise SupplyRefused(f"kit {', '.join(earlier)} was already dispensed at {command.visit}", field="visit")
    visit_date = context.visit_date or today
    handed_over = max(visit_date, today)  # a visit entered late does not make an old kit fresh
    site = allocation.site_id
    scanned = _scanned(state, command.kit, site, supply, handed_over) if command.kit is not None else None
    assigned = _pick(state, site, KitStatus.AVAILABLE, allocation.arm, usable_until(handed_over, supply))
    chosen = assigned[: dispensing.kits]
    if len(chosen) < dispensing.kits:
        raise SupplyRefused(
            f"site {site} has no usable kit for subject {command.subject_id} at {command.visit} "
            f"({dispensing.kits} needed); the site's stock is resupplied automatically, or ask the pharmacist",
            field="kit",
        )
    if scanned is not None and scanned not in chosen:
        raise SupplyRefused(
            f"kit {scanned.kit} is not the kit assigned at this visit: dispense kit {', '.join(k.kit for k in chosen)}",
            field="kit",
        )
    return [
        ev.KitDispensed(
            kit=kit.kit, subject_id=command.subject_id, site_id=site, visit=command.visit,
            dispensed_on=visit_date.isoformat(), study_version=study_version,
        )
        for kit in chosen
    ]  # fmt: skip


def _scanned(state: SupplyState, number: str, site: str, supply: Supply, handed_over: date) -> Kit:
    """A kit the site scanned, if it can leave the shelf at all. It must then be one the system assigns for this
    visit: any other is refused in the same words whatever its treatment, so scanning kits never tells a site
    which subjects share an arm."""
    kit = _kit(state, number)
    why = _why_not(kit, site, supply, handed_over)
    if why is not None:
        raise SupplyRefused(why, field="kit")
    return kit


CONDITIONS = ("unused", "partly used", "empty", "lost", "damaged")


def decide_return(state: SupplyState, command: cmd.ReturnKit, today: date) -> list[ev.IrtEvent]:
    kit = _kit(state, command.kit)
    if kit.status is not KitStatus.DISPENSED or kit.subject_id is None:
        raise SupplyRefused(f"kit {kit.kit} was not dispensed ({kit.status.value.replace('_', ' ')})", field="kit")
    if command.condition not in CONDITIONS:
        raise InvalidInput(f"condition is one of {', '.join(CONDITIONS)}", field="condition")
    if command.units_returned is not None and command.units_returned < 0:
        raise InvalidInput("units returned cannot be negative", field="units_returned")
    return [
        ev.KitReturned(kit=kit.kit, subject_id=kit.subject_id, returned_on=today.isoformat(),
                       units_returned=command.units_returned, condition=command.condition)
    ]  # fmt: skip


def _bound_for(state: SupplyState, kit: Kit) -> str | None:
    shipment = state.shipments.get(kit.shipment_id or "")
    return shipment.site_id if shipment is not None else None


def _one_of_every_other(
    state: SupplyState, definition: StudyDefinition, depot: str, after: date, needs: list[ev.TreatmentNeed]
) -> list[str]:
    """One kit of each treatment the site does not need, so no shipment ever holds a single treatment: otherwise
    the subjects dispensed from it would be known to share an arm."""
    needed = {need.treatment for need in needs}
    spare = [
        _pick(state, depot, KitStatus.AT_DEPOT, arm.id, after)[:1] for arm in definition.arms if arm.id not in needed
    ]
    return [kit.kit for kits in spare for kit in kits]


def decide_resupply(
    state: SupplyState, definition: StudyDefinition, site_id: str, demand: Mapping[str, int], today: date
) -> list[ev.IrtEvent]:
    """Bring the site's usable stock (in transit included) back to its maximum when it is below its minimum now or
    after the kits due within the prediction window; the depot's shortfall is recorded, never hidden."""
    supply = _supply(definition)
    levels = supply.levels_for(site_id)
    after = usable_until(today, supply)
    depot = _depot(definition, supply, site_id, None)
    needs: list[ev.TreatmentNeed] = []
    picked: list[str] = []
    shortfall = 0
    reason = "predicted"
    for arm in sorted(a.id for a in definition.arms):
        on_hand = len(_pick(state, site_id, KitStatus.AVAILABLE, arm, after))
        coming = sum(
            1 for k in state.kits.each()
            if k.status is KitStatus.IN_TRANSIT and k.treatment == arm and _bound_for(state, k) == site_id
        )  # fmt: skip
        predicted = demand.get(arm, 0)
        usable = on_hand + coming
        if usable - predicted >= levels.minimum:
            continue
        reason = "minimum" if usable < levels.minimum else reason
        wanted = levels.maximum + predicted - usable
        shippable = shippable_after(today, supply, site_id)
        stock = [k.kit for k in _pick(state, depot, KitStatus.AT_DEPOT, arm, shippable)][:wanted]
        shortfall += wanted - len(stock)
        picked += stock
        needs.append(ev.TreatmentNeed(treatment=arm, usable=usable, predicted=predicted, requested=wanted))
    if not needs or (not picked and state.shortfalls.get(site_id) == shortfall):
        return []
    picked += _one_of_every_other(state, definition, depot, shippable_after(today, supply, site_id), needs)
    shipment_id = state.next_shipment_id() if picked else None
    decided: list[ev.IrtEvent] = [
        ev.ResupplyTriggered(site_id=site_id, reason=reason, needs=needs, shipment_id=shipment_id, shortfall=shortfall)
    ]
    if shipment_id is not None:
        decided.append(
            ev.ShipmentRequested(
                shipment_id=shipment_id, depot=depot, site_id=site_id, kits=sorted(picked), reason="resupply",
                requested_on=today.isoformat(),
            )
        )  # fmt: skip
    return decided
