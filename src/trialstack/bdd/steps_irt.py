"""Steps about randomization, emergency unblinding and drug supply (IRT), through the irt handlers.

Who acts: site staff (coordinator, investigator) randomize, dispense, return kits and receive shipments; the supply
manager is an unblinded pharmacist (the only role that handles treatments: kit lists, shipments, quarantine); the
system checks each site's stock. Secret seeds come from the scenario's seeded generator, so a scenario draws the
same list and kit numbers every run.

The assertions read what the people named may read: randomization numbers, strata and kits through the irt read
model with `unblinded=False`, the ledger through the same filter the events feed applies to a blinded role. No
step shows a scenario which arm a subject is on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, TypeVar

from trialstack.bdd.errors import ExpectationFailed
from trialstack.bdd.features import DataTable
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import Refusal, World
from trialstack.capture.refs import VisitKey
from trialstack.errors import TrialStackError
from trialstack.identity.policy import Action, Grant, Principal, Role, authorize
from trialstack.irt import commands as cmd
from trialstack.irt import handlers as irt
from trialstack.irt.imports import KIT_COLUMNS, import_kit_list
from trialstack.irt.readmodel import kits, shipments, subject_row, unblindings
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.registry import is_blinded
from trialstack.ledger.uow import UnitOfWork

RANDOMIZATION = "Randomization and unblinding"
SUPPLY = "Drug supply"
SUPPLY_MANAGER = "supply manager"
REVEALING = frozenset({"arm", "treatment", "needs", "imbalance"})
"""Payload keys that would say which treatment a subject or a kit is on."""
T = TypeVar("T")
step = LIBRARY.step


# acting ------------------------------------------------------------------------------------------------------
def _supply_manager(world: World) -> tuple[Principal, Actor]:
    role = Role.UNBLINDED_PHARMACIST
    principal = Principal("bdd:supply-manager", "supply-manager", SUPPLY_MANAGER, (Grant(world.study_id, role),))
    return principal, Actor("user:supply-manager", role.value)


def _act(
    world: World,
    who: tuple[Principal, Actor] | None,
    action: Action | None,
    what: str,
    handler: Callable[[UnitOfWork], T],
    site: str | None = None,
) -> T | None:
    """As `World.command`, for who the scenario's `{actor}`s are not: the supply manager, or the system (`who`
    None: no sign-in, as `trialstack irt resupply` runs)."""
    actor = irt.SYSTEM_IRT if who is None else who[1]
    try:
        if who is not None and action is not None:
            authorize(who[0], action, world.study_id, site)
        with world._unit_of_work(actor) as uow:
            result = handler(uow)
            committed = uow.commit()
    except TrialStackError as error:
        world.platform.cache.clear()
        world._refused(Refusal(what, error.message, error.code))
        return None
    world._observe(result, committed)
    return result


def _entropy(world: World) -> Callable[[], bytes]:
    return lambda: world.rng.randbytes(32)


def _number(text: str, what: str) -> int:
    if not text.isdigit():
        raise ExpectationFailed(f"{what} is a whole number, not {text!r}")
    return int(text)


def _arms(world: World) -> list[str]:
    return [arm.id for arm in world.rules.definition.arms]


def _site(world: World) -> str:
    return world.casebook().site_id


def _kit_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace(" and ", ",").split(",") if part.strip())


# reading (blinded) -------------------------------------------------------------------------------------------
def _subject(world: World) -> dict[str, Any]:
    subject = world.require_subject()
    with world.platform.engine.connect() as connection:
        row = subject_row(connection, world.study_id, subject, unblinded=False)
    if row is None:
        raise ExpectationFailed(f"subject {subject} is not known to the IRT")
    return row


def _kits(world: World, **where: str) -> list[dict[str, Any]]:
    with world.platform.engine.connect() as connection:
        rows = kits(connection, world.study_id, unblinded=False)
    return [row for row in rows if all(row[column] == value for column, value in where.items())]


def _kit(world: World, number: str) -> dict[str, Any]:
    found = _kits(world, kit=number)
    if not found:
        raise ExpectationFailed(f"kit {number} is not in the study's kit list", expected=f"kit {number} registered")
    return found[0]


def _shipment(world: World, shipment_id: str) -> dict[str, Any]:
    with world.platform.engine.connect() as connection:
        found = [row for row in shipments(connection, world.study_id) if row["shipment_id"] == shipment_id]
    if not found:
        raise ExpectationFailed(f"there is no shipment {shipment_id}", expected=f"shipment {shipment_id}")
    return found[0]


def _dispensed(world: World, visit: str) -> list[dict[str, Any]]:
    subject = world.require_subject()
    given = _kits(world, subject_id=subject, visit=visit)
    if not given:
        raise ExpectationFailed(f"no kit was dispensed to {subject} at {visit}", expected=f"a kit dispensed at {visit}")
    return given


def _leaks(value: object, arm: str | None) -> Iterator[str]:
    """Where a payload would say the treatment: a revealing key, or the arm's id (when given) as a value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in REVEALING:
                yield f"{key}={inner!r}"
            else:
                yield from _leaks(inner, arm)
    elif isinstance(value, list):
        for inner in value:
            yield from _leaks(inner, arm)
    elif arm is not None and value == arm:
        yield repr(value)


def _study_events(world: World) -> list[RecordedEvent]:
    with world.platform.engine.connect() as connection:
        return list(store.iter_study(connection, world.study_id))


# randomization -----------------------------------------------------------------------------------------------
@step("the {actor} randomizes the subject", example="When the coordinator randomizes the subject", topic=RANDOMIZATION)
def randomizes(world: World, who: str) -> None:
    """Randomizes the subject at the randomization visit: the system puts the subject in the stratum the protocol's
    factors decide (read from the data entered), gives the next randomization number and allocates the next entry
    of that stratum's list (sealed from a secret seed at the first randomization). Refused for a subject not
    enrolled, without consent in force, already randomized, or whose stratification data is missing."""
    subject, site = world.require_subject(), _site(world)
    command = cmd.RandomizeSubject(subject)
    world.command(
        who,
        Action.SUBJECT_RANDOMIZE,
        "the randomization",
        lambda uow: irt.randomize(uow, world.study_id, command, _entropy(world)),
        site=site,
    )


@step(
    "the subject has randomization number {string}",
    example='Then the subject has randomization number "1001"',
    topic=RANDOMIZATION,
)
def has_number(world: World, number: str) -> None:
    """The subject was randomized, with this randomization number (numbers run from 1001 across the study)."""
    actual = _subject(world)["number"]
    if actual != number:
        raise ExpectationFailed(
            f"the subject's randomization number is {actual or 'none'}",
            expected=number,
            actual=actual or "not randomized",
        )


@step("the subject is in stratum {string}", example='Then the subject is in stratum "0101/LT160"', topic=RANDOMIZATION)
def in_stratum(world: World, stratum: str) -> None:
    """The stratum the subject was randomized in: the site (when randomization is by site) and each factor's level,
    joined by `/`."""
    actual = _subject(world)["stratum"]
    if actual != stratum:
        raise ExpectationFailed(
            f"the subject is in stratum {actual or 'none'}", expected=stratum, actual=actual or "not randomized"
        )


@step("the subject is not randomized", example="Then the subject is not randomized", topic=RANDOMIZATION)
def not_randomized(world: World) -> None:
    """The subject has no randomization number (nothing was allocated)."""
    row = _subject(world)
    if row["number"] is not None:
        raise ExpectationFailed(
            "the subject is randomized", expected="not randomized", actual=f"randomization number {row['number']}"
        )


def _unblind(world: World, who: str, reason: str) -> None:
    subject, site = world.require_subject(), _site(world)
    principal, actor = world.actor(who)
    command = cmd.UnblindSubject(subject, reason)
    world.command(
        who,
        Action.SUBJECT_UNBLIND,
        "the emergency unblinding",
        lambda uow: irt.unblind(uow, world.study_id, command, principal.username, actor.role),
        site=site,
    )


@step(
    "the {actor} breaks the blind for the subject because {string}",
    example='When the investigator breaks the blind for the subject because "anaphylaxis: the treating physician '
    'must know the treatment"',
    topic=RANDOMIZATION,
)
def unblinds(world: World, who: str, reason: str) -> None:
    """Emergency unblinding: the treatment is shown to this user only; the ledger records who, when and the
    medical reason (at least 10 characters), never the treatment. Only the investigator may break the blind.

    Scenario staff are not accounts, so the password the API and the web pages ask for again is not asked here.
    """
    _unblind(world, who, reason)


@step(
    "the {actor} breaks the blind for the subject without giving a reason",
    example="When the investigator breaks the blind for the subject without giving a reason",
    topic=RANDOMIZATION,
)
def unblinds_without_reason(world: World, who: str) -> None:
    """Emergency unblinding with the reason left empty: always refused (the sponsor reviews every unblinding)."""
    _unblind(world, who, "")


@step(
    "the {actor} sees that the blind was broken by the {actor} on {date}",
    example="Then the monitor sees that the blind was broken by the investigator on 2026-02-10",
    topic=RANDOMIZATION,
)
def sees_unblinding(world: World, viewer: str, who: str, day: str) -> None:
    """A blinded user sees the subject's emergency unblinding (who, their role, the day and the reason) in the
    ledger and the IRT read model, as their own access shows it: without the treatment."""
    subject = world.require_subject()
    principal, _actor = world.actor(viewer)
    unblinded = principal.is_unblinded(world.study_id)
    by, by_actor = world.actor(who)
    seen = [
        e.payload for e in _study_events(world)
        if e.event_type == "EmergencyUnblinded" and e.payload["subject_id"] == subject
        and (unblinded or not is_blinded(e.event_type))
    ]  # fmt: skip
    with world.platform.engine.connect() as connection:
        rows = [r for r in unblindings(connection, world.study_id) if r["subject_id"] == subject]
    wanted = (by.username, by_actor.role, day)
    found = [(p["username"], p["role"], p["unblinded_on"]) for p in seen]
    if wanted not in found or wanted not in [(r["username"], r["role"], r["unblinded_on"]) for r in rows]:
        actual = ", ".join(f"{u} ({r}) on {d}" for u, r, d in found) or "no unblinding visible"
        raise ExpectationFailed(
            f"the {viewer} does not see the blind broken by the {who} on {day}",
            expected=f"{by.username} ({by_actor.role}) on {day}",
            actual=actual,
        )
    leaks = [leak for payload in seen for leak in _leaks(payload, None)]
    if leaks:
        raise ExpectationFailed("the unblinding record names the treatment", expected="no treatment", actual=str(leaks))


@step(
    "the allocation is not visible to the {actor}",
    example="Then the allocation is not visible to the monitor",
    topic=RANDOMIZATION,
)
def allocation_hidden(world: World, who: str) -> None:
    """The subject has an allocation, and nothing this user may read shows it: no event their access lets through
    (the filter of the events feed and audit views) and no IRT read-model row read as they read it names the
    subject's arm or a kit's treatment."""
    subject = world.require_subject()
    principal, _actor = world.actor(who)
    unblinded = principal.is_unblinded(world.study_id)
    events = _study_events(world)
    allocated = [e for e in events if e.event_type == "TreatmentAllocated" and e.payload["subject_id"] == subject]
    if not allocated:
        raise ExpectationFailed("the subject has no allocation to hide", expected="randomized", actual="no allocation")
    arm = str(allocated[-1].payload["arm"])
    leaks = [
        f"{e.event_type} #{e.study_seq}: {leak}"
        for e in events if unblinded or not is_blinded(e.event_type)
        for leak in _leaks(e.payload, arm) if e.stream_type == irt.IRT
    ]  # fmt: skip
    with world.platform.engine.connect() as connection:
        row = subject_row(connection, world.study_id, subject, unblinded=unblinded) or {}
        kit_rows = kits(connection, world.study_id, unblinded=unblinded)
    leaks += [f"read model: {leak}" for leak in _leaks(row, arm)]
    leaks += [f"kit {k['kit']}: {leak}" for k in kit_rows for leak in _leaks(k, arm)]
    if leaks:
        raise ExpectationFailed(
            f"the {who} can read the allocation", expected="no treatment visible", actual="; ".join(leaks[:5])
        )


# supply ------------------------------------------------------------------------------------------------------
@step(
    "the supply manager generates {value} kits per treatment at depot {string}, lot {string} expiring on {date}, "
    "numbered from {value}",
    example='Given the supply manager generates 8 kits per treatment at depot "DEPOT_US", lot "LOT-A01" expiring on '
    "2027-06-30, numbered from 1001",
    topic=SUPPLY,
)
def generates_kits(world: World, count: str, depot: str, lot: str, expiry: str, first: str) -> None:
    """Registers a generated kit list at the depot: that many kits of each treatment, numbered consecutively from
    the number given, the numbers handed out to treatments at random (a kit number reveals nothing)."""
    quantities = dict.fromkeys(_arms(world), _number(count, "the number of kits"))
    first_number, expires = _number(first, "the first kit number"), date.fromisoformat(expiry)
    _act(
        world,
        _supply_manager(world),
        Action.SUPPLY_MANAGE,
        "the kit list",
        lambda uow: irt.generate_kit_list(
            uow, world.study_id, depot, quantities, lot, expires, first_number, _entropy(world)
        ),
    )


@step(
    "the supply manager imports the kit list {string} at depot {string}:",
    example=(
        'When the supply manager imports the kit list "kits.csv" at depot "DEPOT_US":\n'
        "  | kit  | treatment | lot     | expiry     |\n"
        "  | 1001 | ZEL       | LOT-A01 | 2027-06-30 |\n"
        "  | 1002 | PBO       | LOT-A01 | 2027-06-30 |"
    ),
    topic=SUPPLY,
    table=KIT_COLUMNS,
)
def imports_kits(world: World, name: str, depot: str, table: DataTable) -> None:
    """Imports the packaging vendor's kit list, one table row per CSV line after the header (so the file's line 2
    is the first row). The file is checked whole: a bad row refuses it with the line and the reason, and nothing
    of it is registered."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KIT_COLUMNS)
    for row in table.records():
        cells = {column.strip().lower(): value.strip() for column, value in row.items()}
        writer.writerow([cells[column] for column in KIT_COLUMNS])
    data = out.getvalue().encode()
    _act(
        world,
        _supply_manager(world),
        Action.SUPPLY_MANAGE,
        f"the kit list {name}",
        lambda uow: import_kit_list(uow, world.study_id, depot, data, name),
    )


@step(
    "the system checks the drug stock of site {string} on {date}",
    example='When the system checks the drug stock of site "0101" on 2026-01-12',
    topic=SUPPLY,
)
def checks_stock(world: World, site: str, day: str) -> None:
    """The IRT's stock check (daily, and after each dispensing): a site below its minimum, now or given the visits
    due within the prediction window, gets a resupply shipment up to its maximum, first expiry first out, never
    a kit expiring within the do-not-dispense days. A site with no stock yet gets its initial shipment this way."""
    world.reach(day)
    _act(world, None, None, f"the stock check of site {site}", lambda uow: irt.resupply_site(uow, world.study_id, site))


@step(
    "the supply manager requests {value} kits per treatment for site {string} on {date}",
    example='Given the supply manager requests 3 kits per treatment for site "0101" on 2026-01-12',
    topic=SUPPLY,
)
def requests_shipment(world: World, count: str, site: str, day: str) -> None:
    """A manual shipment from the site's depot: that many kits of each treatment, first expiry first out."""
    world.reach(day)
    command = cmd.RequestShipment(site, dict.fromkeys(_arms(world), _number(count, "the number of kits")))
    _act(
        world,
        _supply_manager(world),
        Action.SUPPLY_MANAGE,
        f"the shipment to site {site}",
        lambda uow: irt.request_shipment(uow, world.study_id, command),
        site=site,
    )


@step(
    "the depot dispatches shipment {string} on {date}",
    example='Given the depot dispatches shipment "SH-0001" on 2026-01-13',
    topic=SUPPLY,
)
def dispatches(world: World, shipment_id: str, day: str) -> None:
    """The depot sends a requested shipment on its way (recorded by the supply manager)."""
    world.reach(day)
    command = cmd.DispatchShipment(shipment_id, f"1Z-{shipment_id}")
    _act(
        world,
        _supply_manager(world),
        Action.SUPPLY_MANAGE,
        f"the dispatch of {shipment_id}",
        lambda uow: irt.dispatch_shipment(uow, world.study_id, command),
    )


def _receive(world: World, shipment_id: str, day: str, excursion: str | None) -> None:
    world.reach(day)
    shipment = _shipment(world, shipment_id)
    arrived = tuple(k["kit"] for k in _kits(world, shipment_id=shipment_id, status="in_transit"))
    command = cmd.ReceiveShipment(shipment_id, arrived, excursion is not None, excursion)
    world.command(
        "coordinator",
        Action.SUPPLY_RECEIVE,
        f"the receipt of {shipment_id}",
        lambda uow: irt.receive_shipment(uow, world.study_id, command),
        site=shipment["site_id"],
    )


@step(
    "the coordinator receives shipment {string} on {date}",
    example='When the coordinator receives shipment "SH-0001" on 2026-01-15',
    topic=SUPPLY,
)
def receives(world: World, shipment_id: str, day: str) -> None:
    """The site confirms every kit of the shipment arrived in good order: they become available at the site."""
    _receive(world, shipment_id, day, None)


@step(
    "the coordinator receives shipment {string} on {date} with a temperature excursion: {string}",
    example='When the coordinator receives shipment "SH-0001" on 2026-01-15 with a temperature excursion: '
    '"data logger 11.2 °C for 3 h 40 min"',
    topic=SUPPLY,
)
def receives_with_excursion(world: World, shipment_id: str, day: str, note: str) -> None:
    """The site confirms the kits arrived but reports a temperature excursion (the logger's reading): every kit of
    the shipment goes to quarantine and cannot be dispensed until the supply manager assesses it."""
    _receive(world, shipment_id, day, note)


@step(
    "the supply manager releases the kits of shipment {string} on {date} because {string}",
    example='When the supply manager releases the kits of shipment "SH-0001" on 2026-01-16 because "within the '
    'stability data: up to 25 °C for 72 h"',
    topic=SUPPLY,
)
def releases(world: World, shipment_id: str, day: str, reason: str) -> None:
    """The supply manager assesses the quarantined kits of the shipment as usable, on the evidence given."""
    world.reach(day)
    held = tuple(k["kit"] for k in _kits(world, shipment_id=shipment_id, status="quarantined"))
    command = cmd.AssessQuarantine(held, True, reason)
    _act(
        world,
        _supply_manager(world),
        Action.SUPPLY_MANAGE,
        f"the release of the kits of {shipment_id}",
        lambda uow: irt.assess_quarantine(uow, world.study_id, command),
    )


def _dispense(world: World, who: str, visit: str, kit: str | None) -> None:
    subject, site = world.require_subject(), _site(world)
    command = cmd.DispenseKits(subject, visit, kit)
    world.command(
        who,
        Action.KIT_DISPENSE,
        "the dispensing",
        lambda uow: irt.dispense(uow, world.study_id, command),
        site=site,
    )


@step(
    "the {actor} dispenses the subject's kit at the {visit} visit",
    example='When the coordinator dispenses the subject\'s kit at the "Day 1" visit',
    topic=SUPPLY,
)
def dispenses(world: World, who: str, visit: VisitKey) -> None:
    """The system assigns the kit for the subject's treatment at a dispensing visit (first expiry first out, never
    one in quarantine or expiring within the do-not-dispense days of the visit); the site hands it out. The site's
    stock is checked right after, and a resupply requested when it is due."""
    _dispense(world, who, visit.visit_id, None)


@step(
    "the {actor} dispenses kit {string} to the subject at the {visit} visit",
    example='When the coordinator dispenses kit "1004" to the subject at the "Day 1" visit',
    topic=SUPPLY,
)
def dispenses_kit(world: World, who: str, kit: str, visit: VisitKey) -> None:
    """The site scans a kit from its shelf to dispense it; the system checks it as it checks its own choice and
    refuses, without naming a treatment, a kit it would not assign."""
    _dispense(world, who, visit.visit_id, kit)


@step(
    "the {actor} records the return of the kit dispensed at the {visit} visit as {string} with {value} tablets left",
    example='When the coordinator records the return of the kit dispensed at the "Day 1" visit as "partly used" '
    "with 6 tablets left",
    topic=SUPPLY,
)
def returns_kit(world: World, who: str, visit: VisitKey, condition: str, left: str) -> None:
    """Drug accountability: the subject brings back the kit of an earlier visit; the site counts what is left and
    records its condition (unused, partly used, empty, lost, damaged)."""
    units = _number(left, "the number of tablets left")
    (given, *_) = _dispensed(world, visit.visit_id)
    command = cmd.ReturnKit(given["kit"], units, condition)
    world.command(
        who,
        Action.KIT_DISPENSE,
        f"the return of kit {given['kit']}",
        lambda uow: irt.return_kit(uow, world.study_id, command),
        site=_site(world),
    )


KIT_STATUS_WORDS = ("at the depot", "in transit", "available", "quarantined", "dispensed", "returned", "rejected")


@step("kit {string} is {words}", example='Then kit "1001" is quarantined', topic=SUPPLY)
def kit_is(world: World, number: str, status: str) -> None:
    """The kit's status: at the depot, in transit, available (at a site), quarantined, dispensed, returned,
    rejected."""
    if status not in KIT_STATUS_WORDS:
        raise ExpectationFailed(f'a kit is {", ".join(KIT_STATUS_WORDS)}; not "{status}"')
    actual = str(_kit(world, number)["status"])
    wanted = "at_depot" if status == "at the depot" else status.replace(" ", "_")
    if actual != wanted:
        raise ExpectationFailed(f"kit {number} is {actual.replace('_', ' ')}", expected=status, actual=actual)


@step(
    "kits {string} are {words}",
    example='Then kits "1001, 1002" are available',
    topic=SUPPLY,
)
def kits_are(world: World, numbers: str, status: str) -> None:
    """Each kit named (separated by commas) has this status, as for one kit."""
    for number in _kit_list(numbers):
        kit_is(world, number, status)


@step(
    "site {string} has {value} kits available",
    example='Then site "0101" has 16 kits available',
    topic=SUPPLY,
)
def site_has(world: World, site: str, count: str) -> None:
    """Kits available at the site to dispense (received, not in quarantine, not yet dispensed), all treatments."""
    actual = len(_kits(world, location=site, status="available"))
    if actual != _number(count, "the number of kits"):
        raise ExpectationFailed(f"site {site} has {actual} kits available", expected=count, actual=str(actual))


@step(
    "the kit dispensed at the {visit} visit is from lot {string}",
    example='Then the kit dispensed at the "Week 4" visit is from lot "LOT-A01"',
    topic=SUPPLY,
)
def dispensed_lot(world: World, visit: VisitKey, lot: str) -> None:
    """The subject's kit of that visit came from this lot (lots differ in their expiry dates)."""
    given = _dispensed(world, visit.visit_id)
    lots = sorted({str(k["lot"]) for k in given})
    if lots != [lot]:
        raise ExpectationFailed("the kit is from another lot", expected=lot, actual=", ".join(lots))


@step(
    "a {words} shipment {string} of {value} kits to site {string} was requested",
    example='Then a resupply shipment "SH-0001" of 16 kits to site "0101" was requested',
    topic=SUPPLY,
)
def shipment_requested(world: World, reason: str, shipment_id: str, count: str, site: str) -> None:
    """A shipment to the site, of that many kits, requested for resupply (by the system's stock check: the first
    stock of a site too) or manual (by the supply manager)."""
    row = _shipment(world, shipment_id)
    actual = (str(row["kits"]), row["site_id"], row["reason"])
    if actual != (count, site, reason):
        raise ExpectationFailed(
            f"shipment {shipment_id} is another one",
            expected=f"{count} kits to site {site} for {reason}",
            actual=f"{actual[0]} kits to site {actual[1]} for {actual[2]}",
        )


@step("there is no shipment {string}", example='Then there is no shipment "SH-0002"', topic=SUPPLY)
def no_shipment(world: World, shipment_id: str) -> None:
    """No shipment of this number was requested (the stock check found nothing due)."""
    with world.platform.engine.connect() as connection:
        found = [row for row in shipments(connection, world.study_id) if row["shipment_id"] == shipment_id]
    if found:
        row = found[0]
        raise ExpectationFailed(
            f"shipment {shipment_id} was requested",
            expected="no shipment",
            actual=f"{row['kits']} kits to site {row['site_id']} for {row['reason']}",
        )


@step("no kit is registered", example="Then no kit is registered", topic=SUPPLY)
def no_kits(world: World) -> None:
    """The study's kit list is empty: nothing of a refused file was kept."""
    registered = _kits(world)
    if registered:
        raise ExpectationFailed(
            "kits are registered", expected="none", actual=", ".join(str(k["kit"]) for k in registered[:10])
        )
