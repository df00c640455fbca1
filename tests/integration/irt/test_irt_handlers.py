"""IRT through the handlers on SQLite and PostgreSQL: randomization gated by enrolment and consent, the list sealed
in the vault, kits shipped, quarantined, released, dispensed and returned, resupply, emergency unblinding; every
refusal writes nothing."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from tests.conftest import REPO_ROOT
from tests.enrolling import STUDY, enrolled_subject, screened_subject
from trialstack.bootstrap import Platform
from trialstack.clock import FixedClock
from trialstack.consent import commands as consent_cmd
from trialstack.consent import handlers as consent
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.irt import commands as cmd
from trialstack.irt import handlers as irt
from trialstack.irt.draws import seed_commitment
from trialstack.irt.imports import import_kit_list, import_randomization_list, sha256_hex
from trialstack.irt.readmodel import kits, subject_row
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.projections import projections_checksum, rebuild
from trialstack.ledger.registry import is_blinded
from trialstack.ledger.schema import ledger_event
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

COORDINATOR = Actor("user:cora", "study_coordinator")
PHARMACIST = Actor("user:phil", "unblinded_pharmacist")
INVESTIGATOR = Actor("user:ivan", "investigator")
DEPOT = "DEPOT_US"


class Seeds:
    """Entropy for list and kit generation: seeded, so a test can check what a seed gives."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.given: list[bytes] = []

    def __call__(self) -> bytes:
        self.given.append(self.rng.randbytes(32))
        return self.given[-1]


@pytest.fixture
def study(platform: Platform) -> Platform:
    definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", "study.yaml"))
        uow.commit()
    return platform


def run(platform: Platform, actor: Actor, handler: Callable[..., Any], *args: Any) -> Any:
    with platform.unit_of_work(actor) as uow:
        result = handler(uow, STUDY, *args)
        uow.commit()
    return result


def ledger_size(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ledger_event)).scalar_one())


def kinds(events: list[RecordedEvent]) -> list[str]:
    return [e.event_type for e in events]


def refused(platform: Platform, error: type[Exception], match: str, handler: Callable[..., Any], *args: Any) -> None:
    """The command is refused with `match` in its message, and the ledger is unchanged."""
    before = ledger_size(platform)
    with pytest.raises(error, match=match):
        run(platform, COORDINATOR, handler, *args)
    assert ledger_size(platform) == before


def test_the_first_randomization_seals_a_list_and_allocates_from_it(study: Platform) -> None:
    seeds = Seeds()
    subject = enrolled_subject(study, sbp="150")
    randomized = run(study, COORDINATOR, irt.randomize, cmd.RandomizeSubject(subject), seeds)
    assert kinds(randomized.events) == ["RandomizationListGenerated", "SubjectRandomized", "TreatmentAllocated"]
    generated, subject_event, allocated = (e.payload for e in randomized.events)
    assert generated["seed_commitment"] == seed_commitment(seeds.given[0])
    assert sorted(generated["strata"]) == ["0101/GE160", "0101/LT160", "0102/GE160", "0102/LT160"]
    assert subject_event["number"] == "1001" and subject_event["stratum"] == "0101/LT160"
    assert subject_event["values"] == {"DAY1.VS.SYSBP": "150"} and subject_event["factors"]["BLSBP"] == "LT160"
    assert "arm" not in subject_event
    assert is_blinded("TreatmentAllocated") and not is_blinded("SubjectRandomized")
    with study.engine.connect() as connection:
        sealed = study.vault.fetch_document(connection, irt.vault_owner(STUDY), generated["checksum"])
    assert sealed is not None
    listed = orjson.loads(sealed)
    assert listed["seed"] == seeds.given[0].hex()
    assert allocated["arm"] == listed["strata"]["0101/LT160"]["arms"][0] and allocated["position"] == 1

    second = enrolled_subject(study, sbp="171")
    again = run(study, COORDINATOR, irt.randomize, cmd.RandomizeSubject(second), seeds)
    assert kinds(again.events) == ["SubjectRandomized", "TreatmentAllocated"]
    assert again.number == "1002" and again.stratum.code == "0101/GE160"
    assert again.arm == listed["strata"]["0101/GE160"]["arms"][0]
    refused(study, DomainRuleViolation, "already randomized on 2026-01-05 \\(randomization number 1001\\)",
            irt.randomize, cmd.RandomizeSubject(subject), seeds)  # fmt: skip


def test_only_an_enrolled_subject_with_current_consent_and_a_decidable_stratum_is_randomized(
    study: Platform, clock: FixedClock
) -> None:
    seeds = Seeds()
    screening = screened_subject(study)
    refused(study, DomainRuleViolation, "is screening: only an enrolled subject", irt.randomize,
            cmd.RandomizeSubject(screening), seeds)  # fmt: skip
    no_sbp = enrolled_subject(study, sbp=None)
    refused(study, DomainRuleViolation, "BLSBP cannot be decided: DAY1.VS.SYSBP not recorded", irt.randomize,
            cmd.RandomizeSubject(no_sbp), seeds)  # fmt: skip
    withdrawn = enrolled_subject(study)
    withdrawal = consent_cmd.WithdrawConsent(withdrawn, "ICF", "2026-01-05", "Subject no longer wishes to take part")
    run(study, COORDINATOR, consent.withdraw_consent, withdrawal)
    refused(study, DomainRuleViolation, "randomization is refused: consent to ICF was withdrawn", irt.randomize,
            cmd.RandomizeSubject(withdrawn), seeds)  # fmt: skip
    refused(study, NotFound, "not found", irt.randomize, cmd.RandomizeSubject("0101-999"), seeds)


def test_a_stratum_that_uses_its_list_up_is_extended_with_a_new_seed(study: Platform) -> None:
    seeds = Seeds(3)
    data = b"stratum,arm\n0101/LT160,PBO\n0101/LT160,ZEL\n"
    checksum = sha256_hex(data)
    with pytest.raises(InvalidInput, match="not the checksum given"):
        run(study, PHARMACIST, import_randomization_list, data, "list.csv", "0" * 64)
    imported = run(study, PHARMACIST, import_randomization_list, data, "list.csv", checksum)
    assert imported[0].payload["source"] == "imported" and imported[0].payload["file_checksum"] == checksum
    arms = [run(study, COORDINATOR, irt.randomize, cmd.RandomizeSubject(enrolled_subject(study)), seeds).arm
            for _ in range(3)]  # fmt: skip
    assert arms[:2] == ["PBO", "ZEL"]
    lists = [e for e in _irt_events(study) if e.event_type == "RandomizationListGenerated"]
    assert [e.payload["source"] for e in lists] == ["imported", "generated"]
    assert lists[1].payload["strata"].keys() == {"0101/LT160"}
    bad = b"stratum,position,arm\n0101/LT160,1,PBO\n0101/LT160,3,ZEL\n"
    expected = "list.csv line 3, column position: '3' in stratum 0101/LT160, expected 2"
    with pytest.raises(InvalidInput, match=re.escape(expected)):
        run(study, PHARMACIST, import_randomization_list, bad, "list.csv", sha256_hex(bad))


def _irt_events(platform: Platform) -> list[RecordedEvent]:
    with platform.unit_of_work(COORDINATOR) as uow:
        return uow.read_stream(irt.IRT, irt.randomization_stream(STUDY)) + uow.read_stream(
            irt.IRT, irt.supply_stream(STUDY)
        )


def _received(platform: Platform, clock: FixedClock, excursion: bool = False) -> list[str]:
    """Ship the site's first stock (the resupply check finds it below minimum), dispatch and receive it."""
    requested = run(platform, irt.SYSTEM_IRT, irt.resupply_site, "0101")
    assert kinds(requested) == ["ResupplyTriggered", "ShipmentRequested"]
    shipment = requested[1].payload
    run(platform, PHARMACIST, irt.dispatch_shipment, cmd.DispatchShipment(shipment["shipment_id"], "1Z999"))
    clock.advance(timedelta(days=2))
    receipt = cmd.ReceiveShipment(shipment["shipment_id"], tuple(shipment["kits"]), excursion, "logger 11 °C")
    received = run(platform, COORDINATOR, irt.receive_shipment, receipt)
    assert kinds(received) == (["ShipmentReceived", "KitsQuarantined"] if excursion else ["ShipmentReceived"])
    return list(shipment["kits"])


@pytest.fixture
def stocked(study: Platform, clock: FixedClock) -> Iterator[Platform]:
    """A depot with a main lot and a short-dated lot (expires 20 days after the start: inside do-not-dispense)."""
    start = clock.now().date()
    seeds = Seeds(5)
    run(study, PHARMACIST, irt.generate_kit_list, DEPOT, {"ZEL": 3, "PBO": 3}, "LOT-S", start + timedelta(days=40),
        100, seeds)  # fmt: skip
    run(study, PHARMACIST, irt.generate_kit_list, DEPOT, {"ZEL": 30, "PBO": 30}, "LOT-A",
        start + timedelta(days=500), 200, seeds)  # fmt: skip
    yield study


def test_kits_travel_from_depot_to_quarantine_to_the_subject_and_back(stocked: Platform, clock: FixedClock) -> None:
    seeds = Seeds()
    subject = enrolled_subject(stocked, on=clock.now().date().isoformat())
    randomized = run(stocked, COORDINATOR, irt.randomize, cmd.RandomizeSubject(subject), seeds)
    shipped = _received(stocked, clock, excursion=True)
    with stocked.engine.connect() as connection:
        statuses = {k["kit"]: k["status"] for k in kits(connection, STUDY, unblinded=True, location="0101")}
        kit_rows = {k["kit"]: k for k in kits(connection, STUDY, unblinded=True)}
    assert set(statuses) == set(shipped) and set(statuses.values()) == {"quarantined"}
    assert all(kit_rows[k]["lot"] == "LOT-A" for k in shipped), "the short-dated lot is never shipped"
    dispense = cmd.DispenseKits(subject, "DAY1", kit=shipped[0])
    refused(stocked, DomainRuleViolation, f"kit {shipped[0]} is in quarantine", irt.dispense, dispense)
    refused(stocked, DomainRuleViolation, "has no usable kit for subject", irt.dispense,
            cmd.DispenseKits(subject, "DAY1"))  # fmt: skip
    release = cmd.AssessQuarantine(tuple(shipped), True, "Within stability data (25 °C for 72 h)")
    assert kinds(run(stocked, PHARMACIST, irt.assess_quarantine, release)) == ["KitsReleased"]
    dispensed = run(stocked, COORDINATOR, irt.dispense, cmd.DispenseKits(subject, "DAY1"))
    kit = dispensed[0].payload["kit"]
    assert dispensed[0].event_type == "KitDispensed" and kit_rows[kit]["treatment"] == randomized.arm
    refused(stocked, DomainRuleViolation, f"kit {kit} was already dispensed at DAY1", irt.dispense,
            cmd.DispenseKits(subject, "DAY1"))  # fmt: skip
    refused(stocked, DomainRuleViolation, "nothing is dispensed at visit WEEK2", irt.dispense,
            cmd.DispenseKits(subject, "WEEK2"))  # fmt: skip
    returned = run(stocked, COORDINATOR, irt.return_kit, cmd.ReturnKit(kit, 3, "partly used"))
    assert returned[0].payload == {"kit": kit, "subject_id": subject, "returned_on": returned[0].payload["returned_on"],
                                   "units_returned": 3, "condition": "partly used"}  # fmt: skip
    with stocked.engine.connect() as connection:
        blinded = kits(connection, STUDY, unblinded=False, subject_id=subject)
        row = subject_row(connection, STUDY, subject, unblinded=False)
    assert blinded[0]["status"] == "returned" and "treatment" not in blinded[0]
    assert row is not None and "arm" not in row and row["number"] == "1001"


def test_a_kit_of_the_other_treatment_or_expiring_soon_is_refused_without_naming_a_treatment(
    stocked: Platform, clock: FixedClock
) -> None:
    subject = enrolled_subject(stocked, on=clock.now().date().isoformat())
    arm = run(stocked, COORDINATOR, irt.randomize, cmd.RandomizeSubject(subject), Seeds()).arm
    shipped = _received(stocked, clock)
    with stocked.engine.connect() as connection:
        other = next(k["kit"] for k in kits(connection, STUDY, unblinded=True) if k["kit"] in shipped
                     and k["treatment"] != arm)  # fmt: skip
    before = ledger_size(stocked)
    with pytest.raises(DomainRuleViolation) as error:
        run(stocked, COORDINATOR, irt.dispense, cmd.DispenseKits(subject, "DAY1", kit=other))
    assert ledger_size(stocked) == before
    assert "is not the kit assigned at this visit: dispense kit" in error.value.message
    assert "ZEL" not in error.value.message and "PBO" not in error.value.message
    short = _ship_short_dated(stocked, clock)
    refused(stocked, DomainRuleViolation, f"kit {short} expires on .*within the 30 do-not-dispense days",
            irt.dispense, cmd.DispenseKits(subject, "DAY1", kit=short))  # fmt: skip


def _ship_short_dated(platform: Platform, clock: FixedClock) -> str:
    """Register and ship one kit that will expire 10 days after it arrives (a manual shipment may carry it only
    if it was registered after the check; here it goes straight to the site as a manual emergency shipment)."""
    today = clock.now().date()
    data = f"kit,treatment,lot,expiry\n900,PBO,LOT-X,{today + timedelta(days=45)}\n".encode()
    run(platform, PHARMACIST, import_kit_list, DEPOT, data, "late.csv", sha256_hex(data))
    shipment = run(platform, PHARMACIST, irt.request_shipment, cmd.RequestShipment("0101", {"PBO": 1}))
    shipment_id = shipment[0].payload["shipment_id"]
    run(platform, PHARMACIST, irt.dispatch_shipment, cmd.DispatchShipment(shipment_id))
    clock.advance(timedelta(days=20))
    run(platform, COORDINATOR, irt.receive_shipment, cmd.ReceiveShipment(shipment_id, ("900",), False))
    return "900"


def test_a_kit_list_is_checked_whole_and_a_bad_row_writes_nothing(study: Platform) -> None:
    data = b"kit,treatment,lot,expiry\n1001,ZEL,L1,2027-12-31\n1002,PBO,L1,2027-12-31\n1001,PBO,L1,2027-12-31\n"
    before = ledger_size(study)
    with pytest.raises(InvalidInput, match=re.escape("kits.csv line 4: kit number 1001 is a duplicate of line 2")):
        run(study, PHARMACIST, import_kit_list, DEPOT, data, "kits.csv")
    unknown = b"kit;treatment;lot;expiry\n1;ZEL;L1;2027-12-31\n2;XYZ;L1;2027-12-31\n"
    with pytest.raises(InvalidInput, match=re.escape("kits.csv line 3: treatment 'XYZ' of kit 2 is not an arm")):
        run(study, PHARMACIST, import_kit_list, DEPOT, unknown, "kits.csv")
    with pytest.raises(InvalidInput, match=re.escape("kits.csv line 1: missing column expiry")):
        run(study, PHARMACIST, import_kit_list, DEPOT, b"kit,treatment,lot\n1,ZEL,L1\n", "kits.csv")
    assert ledger_size(study) == before
    good = b"kit\ttreatment\tlot\texpiry\n1\tZEL\tL1\t2027-12-31\n2\tPBO\tL1\t2027-12-31\n"
    registered = run(study, PHARMACIST, import_kit_list, DEPOT, good, "kits.tsv")
    assert registered[0].event_type == "KitsRegistered" and is_blinded("KitsRegistered")
    with pytest.raises(InvalidInput, match="kit number 1 is already registered"):
        run(study, PHARMACIST, import_kit_list, DEPOT, good, "kits.tsv")


def test_resupply_is_triggered_by_the_visits_due_within_the_prediction_window(
    stocked: Platform, clock: FixedClock
) -> None:
    """The site holds 8 kits per treatment (its maximum). Six subjects in one stratum get at least 2 and at most 4
    of either arm (blocks of 4 or 6), so after Day 1 each treatment has 4 or more left: above the minimum of 3, and
    Week 4 is 28 days away (a subject enrolled but not yet randomized would count as one kit of each arm due now,
    so each is randomized and dispensed before the next is enrolled). Twenty days later Week 4 is due within 14
    days: the arm with n ≥ 3 subjects has 8 - 2n < 3 usable kits once their visits are counted, so a resupply is
    predicted and a shipment requested."""
    _received(stocked, clock)
    assert run(stocked, irt.SYSTEM_IRT, irt.resupply_site, "0101") == [], "at its maximum, the site needs nothing"
    seeds = Seeds()
    today = clock.now().date().isoformat()
    for _ in range(6):
        subject = enrolled_subject(stocked, on=today, sbp="150")
        run(stocked, COORDINATOR, irt.randomize, cmd.RandomizeSubject(subject), seeds)
        dispensed = run(stocked, COORDINATOR, irt.dispense, cmd.DispenseKits(subject, "DAY1"))
        assert kinds(dispensed) == ["KitDispensed"], "no resupply while the stock covers the next 14 days"
    clock.advance(timedelta(days=20))
    due = run(stocked, irt.SYSTEM_IRT, irt.resupply_site, "0101")
    assert kinds(due) == ["ResupplyTriggered", "ShipmentRequested"]
    triggered = due[0].payload
    assert triggered["reason"] == "predicted" and triggered["shortfall"] == 0
    assert all(need["predicted"] >= 3 and need["usable"] == 8 - need["predicted"] for need in triggered["needs"])
    assert due[1].payload["reason"] == "resupply"
    others = 2 - len(triggered["needs"])  # one kit of a treatment not needed: no shipment holds a single treatment
    assert len(due[1].payload["kits"]) == sum(need["requested"] for need in triggered["needs"]) + others
    assert run(stocked, irt.SYSTEM_IRT, irt.resupply_site, "0101") == [], "kits in transit count as stock"


def test_emergency_unblinding_reveals_the_arm_to_the_caller_and_records_who_when_why(study: Platform) -> None:
    subject = enrolled_subject(study)
    arm = run(study, COORDINATOR, irt.randomize, cmd.RandomizeSubject(subject), Seeds()).arm
    before = ledger_size(study)
    with pytest.raises(InvalidInput, match="needs the medical reason"):
        run(study, INVESTIGATOR, irt.unblind, cmd.UnblindSubject(subject, "   "), "ivan", "investigator")
    assert ledger_size(study) == before
    reason = "Anaphylaxis in the emergency department; treating physician must know the treatment"
    unblinded = run(study, INVESTIGATOR, irt.unblind, cmd.UnblindSubject(subject, reason), "ivan", "investigator")
    assert unblinded.arm == arm and unblinded.arm_name.startswith(("Zelvoprin", "Matching placebo"))
    event = unblinded.events[0]
    assert event.event_type == "EmergencyUnblinded" and not is_blinded("EmergencyUnblinded")
    assert arm not in orjson.dumps(event.payload).decode()
    with study.engine.connect() as connection:
        row = subject_row(connection, STUDY, subject, unblinded=False)
    assert row is not None and row["unblinded_role"] == "investigator" and row["unblinded_on"] == "2026-01-05"


def test_the_read_models_rebuild_to_the_same_checksum(stocked: Platform, clock: FixedClock) -> None:
    subject = enrolled_subject(stocked, on=clock.now().date().isoformat())
    run(stocked, COORDINATOR, irt.randomize, cmd.RandomizeSubject(subject), Seeds())
    _received(stocked, clock, excursion=True)
    before = projections_checksum(stocked.engine, stocked.wiring)
    rebuild(stocked.engine, stocked.wiring)
    assert projections_checksum(stocked.engine, stocked.wiring) == before


def test_dates_are_the_clocks(study: Platform, clock: FixedClock) -> None:
    """Randomization and dispensing dates come from the clock passed in, never the machine's."""
    clock.set(clock.now() + timedelta(days=3))
    subject = enrolled_subject(study, on=clock.now().date().isoformat())
    randomized = run(study, COORDINATOR, irt.randomize, cmd.RandomizeSubject(subject), Seeds())
    assert randomized.events[-2].payload["randomized_on"] == (date(2026, 1, 5) + timedelta(days=3)).isoformat()
