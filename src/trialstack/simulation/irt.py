"""Randomization and drug supply in the simulation (IRT), through the irt handlers, one unit of work per command:

- Before the first screening the supply manager (an unblinded pharmacist at every site) registers a generated kit
  list at the depot: a main lot, and a short-dated lot whose kits the do-not-dispense rule holds back later. The
  first resupply check ships each site its initial stock (the site's minimum is not met).
- Every shipment is dispatched by the depot the next morning and received by the site's coordinator two days
  later; one shipment (drawn at random among the first few) arrives with a temperature excursion, so its kits go
  to quarantine, and the supply manager releases them the next day on the product's stability data.
- At Day 1, right after enrolment, the coordinator randomizes the subject (the list is generated from a secret
  seed at the first randomization) and dispenses the kit the system assigns; at each later dispensing visit the
  previous kit comes back (tablets counted) and the next one goes out. Dispensing checks the site's stock and
  requests a resupply when it is due; a weekly check catches the visits coming up (the predictive trigger).
- The first adverse event of the trial leads its site's investigator to break the blind for that subject.

Its own seeded generator (kit numbers, seeds, excursion, tablet counts): the rest of the simulation draws what it
drew before for a seed.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING

from trialstack.irt import commands as cmd
from trialstack.irt import handlers as irt
from trialstack.irt.readmodel import kits
from trialstack.ledger.envelope import Actor, RecordedEvent

if TYPE_CHECKING:
    from trialstack.simulation.simulator import Simulation, SubjectRun

SUPPLY_MANAGER = Actor("user:demo-supply-manager", "unblinded_pharmacist")
MAIN_LOT_MONTHS = 18
SHORT_LOT_DAYS = 75
SPARE = 1.4
"""Kits registered per kit the trial's dispensing visits need (overage for stock held at sites)."""
DISPATCH_AT = time(10, 0)
RECEIVE_AT = time(14, 0)
EXCURSION_AMONG = (2, 4)
TABLETS = 35
UNBLINDING_REASON = (
    "Serious hypotension requiring emergency treatment; the treating physician needs to know whether the subject "
    "received zelvoprin."
)


class PharmacyDesk:
    """The IRT work of one simulation."""

    def __init__(self, simulation: Simulation) -> None:
        self.sim = simulation
        self.rng = random.Random(f"irt:{simulation.seed}")
        self.randomizes = simulation.definition.randomization is not None
        self.active = self.randomizes and simulation.definition.supply is not None
        """Supply runs only when the study declares both randomization (the treatment) and supply."""
        self.stats: Counter[str] = Counter()
        self._shipments = 0
        self._excursion_at = self.rng.randint(*EXCURSION_AMONG)
        self._unblinded = False
        self._randomized: set[str] = set()
        self._kits: dict[str, list[str]] = {}
        """Subject → kits dispensed, in order (the last one comes back at the next dispensing visit)."""

    def _entropy(self) -> bytes:
        return self.rng.randbytes(32)

    def _do(self, actor: Actor, handler: object, *args: object) -> list[RecordedEvent] | None:
        committed = self.sim._do(actor, handler, *args)  # type: ignore[arg-type]
        for event in committed or ():
            if event.event_type == "ShipmentRequested":
                self._plan_shipment(event.payload["shipment_id"], event.payload["site_id"])
        return committed

    def _morning(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, self.sim.start.tzinfo)

    # supply ---------------------------------------------------------------------------------------------
    def open(self, expected_subjects: int) -> None:
        """Register the kit list and ship every site its first stock; then check stock weekly."""
        if not self.active:
            return
        definition = self.sim.definition
        supply = definition.supply
        assert supply is not None
        per_subject = sum(d.kits for d in supply.dispensing)
        arms = [arm.id for arm in definition.arms]
        per_arm = math.ceil(expected_subjects * per_subject * SPARE / len(arms)) + 10 * len(definition.sites)
        depot = supply.depots[0].id
        start = self.sim.clock.now().date()
        main_expiry = start + timedelta(days=30 * MAIN_LOT_MONTHS)
        short = dict.fromkeys(arms, 4)
        first = self._first_free_number()
        self._do(SUPPLY_MANAGER, irt.generate_kit_list, depot, short, "LOT-S01", start + timedelta(days=SHORT_LOT_DAYS),
                 first, self._entropy)  # fmt: skip
        self._do(SUPPLY_MANAGER, irt.generate_kit_list, depot, dict.fromkeys(arms, per_arm), "LOT-A01", main_expiry,
                 first + 1000, self._entropy)  # fmt: skip
        self._weekly_check()

    def _first_free_number(self) -> int:
        """1000 in a new study; past every kit number already registered when a simulation continues one."""
        with self.sim.platform.engine.connect() as connection:
            taken = [int(k["kit"]) for k in kits(connection, self.sim.study_id, unblinded=False) if k["kit"].isdigit()]
        return (max(taken, default=0) // 1000 + 1) * 1000

    def _weekly_check(self) -> None:
        for site in self.sim.definition.sites:
            self._do(irt.SYSTEM_IRT, irt.resupply_site, site.id)
        self.sim.at(self.sim.clock.now() + timedelta(days=7), self._weekly_check)

    def _plan_shipment(self, shipment_id: str, site_id: str) -> None:
        day = self.sim.clock.now().date()
        self.sim.at(self._morning(day + timedelta(days=1), DISPATCH_AT), partial(self._dispatch, shipment_id))
        receive = partial(self._receive, shipment_id, site_id)
        self.sim.at(self._morning(day + timedelta(days=3), RECEIVE_AT), receive)

    def _dispatch(self, shipment_id: str) -> None:
        tracking = f"1Z{self.rng.randrange(10**9):09d}"
        self._do(SUPPLY_MANAGER, irt.dispatch_shipment, cmd.DispatchShipment(shipment_id, tracking))

    def _receive(self, shipment_id: str, site_id: str) -> None:
        self._shipments += 1
        excursion = self._shipments == self._excursion_at
        with self.sim.platform.engine.connect() as connection:
            arrived = [k["kit"] for k in kits(connection, self.sim.study_id, unblinded=False)
                       if k["shipment_id"] == shipment_id and k["status"] == "in_transit"]  # fmt: skip
        note = "Data logger shows 11.2 °C for 3 h 40 min (label: store at 2–8 °C)" if excursion else None
        receipt = cmd.ReceiveShipment(shipment_id, tuple(arrived), excursion, note)
        if self._do(self.sim.staff.coordinator(site_id), irt.receive_shipment, receipt) and excursion:
            self.stats["excursions"] += 1
            release = cmd.AssessQuarantine(
                tuple(arrived), True, "Excursion within the product's stability data (up to 25 °C for 72 h): usable"
            )
            self.sim.at(self.sim.clock.now() + timedelta(days=1), partial(self._assess, release))

    def _assess(self, release: cmd.AssessQuarantine) -> None:
        self._do(SUPPLY_MANAGER, irt.assess_quarantine, release)

    # subjects ---------------------------------------------------------------------------------------------
    def after_enrolment(self, run: SubjectRun, day1: date) -> None:
        if not self.randomizes:
            return
        coordinator = self.sim.staff.coordinator(run.site_id)
        randomized = self._do(coordinator, irt.randomize, cmd.RandomizeSubject(run.subject_id), self._entropy)
        if randomized is not None:
            self._randomized.add(run.subject_id)
        if randomized is not None and self.active:
            self.at_visit(run, self.sim.definition.randomization.visit, day1)  # type: ignore[union-attr]

    def at_visit(self, run: SubjectRun, visit_id: str, on: date) -> None:
        supply = self.sim.definition.supply
        if not self.active or supply is None or supply.dispensing_at(visit_id) is None:
            return
        coordinator = self.sim.staff.coordinator(run.site_id)
        given = self._kits.setdefault(run.subject_id, [])
        if given:
            taken = self.rng.randint(20, TABLETS)
            back = cmd.ReturnKit(given[-1], TABLETS - taken, "partly used" if taken < TABLETS else "empty")
            self._do(coordinator, irt.return_kit, back)
        dispensed = self._do(coordinator, irt.dispense, cmd.DispenseKits(run.subject_id, visit_id))
        given += [e.payload["kit"] for e in dispensed or () if e.event_type == "KitDispensed"]

    def on_adverse_event(self, run: SubjectRun) -> None:
        if not self.randomizes or self._unblinded or run.subject_id not in self._randomized:
            return
        investigator = self.sim.staff.investigator(run.site_id)
        username = investigator.id.removeprefix("user:")
        command = cmd.UnblindSubject(run.subject_id, UNBLINDING_REASON)
        if self._do(investigator, irt.unblind, command, username, investigator.role) is not None:
            self._unblinded = True
