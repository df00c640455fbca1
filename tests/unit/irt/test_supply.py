"""Kits and supply decided and folded without a database: the kit list, shipments first expiry first out, receipt
and quarantine, dispensing (and what a refusal may say to a blinded site), resupply, and the demand forecast."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from trialstack.consent import events as cev
from trialstack.consent.events import ConsentView, see
from trialstack.errors import InvalidInput, NotFound, TrialStackError
from trialstack.irt import commands as cmd
from trialstack.irt import events as ev
from trialstack.irt.draws import Draws
from trialstack.irt.forecast import SubjectOutlook, demand
from trialstack.irt.model import Allocation, SubjectStatus
from trialstack.irt.supply import (
    DispenseContext,
    KitStatus,
    SupplyRefused,
    SupplyState,
    decide_assess,
    decide_dispatch,
    decide_dispense,
    decide_receive,
    decide_register,
    decide_request_shipment,
    decide_resupply,
    decide_return,
    evolve,
    generate_kits,
)
from trialstack.protocol.definition import StudyDefinition
from trialstack.standards.loader import load_study_file

DEMO = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"
DEPOT = "DEPOT_US"
TODAY = date(2026, 3, 10)
"""The demo does not dispense a kit within 30 days of its expiry, so one dispensed today expires after 2026-04-09;
it ships a kit only if it stays dispensable through the 14 days of its prediction window: after 2026-04-23."""
VERSION = "h" * 64


@pytest.fixture(scope="module")
def demo() -> StudyDefinition:
    return load_study_file(DEMO)


def apply(state: SupplyState, events: Iterable[ev.IrtEvent]) -> SupplyState:
    for event in events:
        state = evolve(event, state)
    return state


def entry(kit: str, treatment: str, expiry: str, line: int | None = None) -> cmd.KitEntry:
    return cmd.KitEntry(kit, treatment, "LOT-1", expiry, line)


def register(state: SupplyState, definition: StudyDefinition, *kits: cmd.KitEntry) -> SupplyState:
    return apply(state, decide_register(state, definition, cmd.RegisterKits(DEPOT, kits, "imported", "c" * 64)))


def deliver(
    state: SupplyState,
    definition: StudyDefinition,
    site: str,
    quantities: dict[str, int],
    excursion: bool = False,
    day: date = TODAY,
) -> tuple[SupplyState, list[str]]:
    """Request, dispatch and receive a shipment whole on `day`; returns the state and the kits shipped."""
    requested = decide_request_shipment(state, definition, cmd.RequestShipment(site, quantities), day)
    state = apply(state, requested)
    shipment = requested[0]
    assert isinstance(shipment, ev.ShipmentRequested)
    state = apply(state, decide_dispatch(state, cmd.DispatchShipment(shipment.shipment_id), day))
    received = cmd.ReceiveShipment(shipment.shipment_id, tuple(shipment.kits), excursion)
    return apply(state, decide_receive(state, received, day)), shipment.kits


def status(state: SupplyState, *kits: str) -> list[KitStatus]:
    return [state.kits[kit].status for kit in kits]


# --- what a site may be told -------------------------------------------------------------------------------------


def arm_words(definition: StudyDefinition) -> list[str]:
    """Every arm id and every word of an arm's name a refusal could leak ('Zelvoprin', 'placebo', ...)."""
    words = {arm.id for arm in definition.arms}
    for arm in definition.arms:
        words |= {w for w in re.findall(r"[A-Za-z]{4,}", arm.name) if w.lower() not in {"once", "daily", "matching"}}
    return sorted(words)


def site_refusal(
    definition: StudyDefinition, decide: Callable[[], object], match: str, error: type[TrialStackError] = SupplyRefused
) -> str:
    """The decision is refused with `match` in its message, and the message names no treatment (a site reads it)."""
    with pytest.raises(error, match=match) as refused:
        decide()
    message = refused.value.message
    named = [word for word in arm_words(definition) if re.search(rf"\b{word}\b", message, re.IGNORECASE)]
    assert not named, f"a refusal shown to a site names {named}: {message!r}"
    return message


def test_the_leak_check_itself_catches_an_arm_id(demo: StudyDefinition) -> None:
    assert {"ZEL", "PBO", "Zelvoprin", "placebo"} <= set(arm_words(demo))

    def leaky() -> None:
        raise SupplyRefused("kit 100001 holds PBO, not the subject's treatment")

    with pytest.raises(AssertionError, match=r"names \['PBO'\]"):
        site_refusal(demo, leaky, "kit 100001")


# --- the kit list ------------------------------------------------------------------------------------------------


def test_registering_refuses_duplicates_within_the_list_and_against_registered_kits_naming_the_line(
    demo: StudyDefinition,
) -> None:
    state = register(SupplyState("HTN-201"), demo, entry("100001", "ZEL", "2027-01-31"))
    twice = (entry("100002", "ZEL", "2027-01-31", 2), entry("100003", "PBO", "2027-01-31", 3),
             entry("100002", "PBO", "2027-01-31", 4))  # fmt: skip
    with pytest.raises(InvalidInput, match=r"^line 4: kit number 100002 is a duplicate of line 2$") as refused:
        decide_register(state, demo, cmd.RegisterKits(DEPOT, twice, "imported", "c"))
    assert refused.value.field == "kit"
    again = (entry("100002", "ZEL", "2027-01-31", 2), entry(" 100001 ", "PBO", "2027-01-31", 3))
    with pytest.raises(InvalidInput, match=r"^line 3: kit number 100001 is already registered in this study$"):
        decide_register(state, demo, cmd.RegisterKits(DEPOT, again, "imported", "c"))
    unnumbered = (entry("100002", "ZEL", "2027-01-31"), entry("100002", "ZEL", "2027-01-31"))
    with pytest.raises(InvalidInput, match=r"^kit 2: kit number 100002 is a duplicate of kit 1$"):
        decide_register(state, demo, cmd.RegisterKits(DEPOT, unnumbered, "generated", "c"))


@pytest.mark.parametrize(
    ("kits", "depot", "said", "field"),
    [
        ((entry("100002", "ZELX", "2027-01-31", 2),), DEPOT, r"line 2: treatment 'ZELX' of kit 100002 is not an arm "
         r"\(PBO, ZEL\)", "treatment"),
        ((entry("100002", "ZEL", "2027-02-30", 7),), DEPOT, r"line 7: expiry '2027-02-30' of kit 100002 is not a date",
         "expiry"),
        ((entry("100002", "ZEL", "31/01/2027", 2),), DEPOT, "line 2: expiry '31/01/2027'", "expiry"),
        ((entry("100002", "ZEL", "2027-01-31", 2),), "DEPOT_EU", r"unknown depot 'DEPOT_EU' \(depots: DEPOT_US\)",
         "depot"),
        ((), DEPOT, "the kit list has no kits", "kits"),
        ((entry(" ", "ZEL", "2027-01-31", 5),), DEPOT, "line 5: the kit number is empty", "kit"),
    ],
    ids=["unknown treatment", "impossible date", "not ISO", "unknown depot", "empty list", "empty number"],
)  # fmt: skip
def test_registering_refuses_what_is_not_a_kit_of_this_study(
    demo: StudyDefinition, kits: tuple[cmd.KitEntry, ...], depot: str, said: str, field: str
) -> None:
    with pytest.raises(InvalidInput, match=said) as refused:
        decide_register(SupplyState("HTN-201"), demo, cmd.RegisterKits(depot, kits, "imported", "c"))
    assert refused.value.field == field


def test_a_generated_kit_list_mixes_treatments_in_number_order_and_is_reproducible() -> None:
    seed = bytes(range(32))
    kits = generate_kits(Draws(seed, "kits"), {"ZEL": 20, "PBO": 20}, "LOT-1", date(2027, 1, 31), 5001)
    assert [k.kit for k in kits] == [str(n) for n in range(5001, 5041)]
    assert sorted(k.treatment for k in kits) == ["PBO"] * 20 + ["ZEL"] * 20
    assert [k.treatment for k in kits] != sorted(k.treatment for k in kits)
    assert generate_kits(Draws(seed, "kits"), {"ZEL": 20, "PBO": 20}, "LOT-1", date(2027, 1, 31), 5001) == kits


# --- shipments ---------------------------------------------------------------------------------------------------

STOCK = (
    entry("100001", "ZEL", "2026-04-23"),  # dispensable today, but not through the prediction window: not shipped
    entry("100002", "ZEL", "2026-04-24"),  # the first that may be shipped
    entry("100003", "ZEL", "2026-06-30"),
    entry("100004", "ZEL", "2027-01-31"),
    entry("100005", "ZEL", "2026-05-15"),
    entry("100006", "ZEL", "2026-03-20"),
    entry("200001", "PBO", "2026-12-31"),
    entry("200002", "PBO", "2026-04-01"),
    entry("200003", "PBO", "2026-08-31"),
    entry("200004", "PBO", "2026-07-31"),
)


def test_a_shipment_takes_the_first_expiring_kits_that_stay_dispensable_through_the_prediction_window(
    demo: StudyDefinition,
) -> None:
    state = register(SupplyState("HTN-201"), demo, *STOCK)
    decided = decide_request_shipment(state, demo, cmd.RequestShipment("0101", {"ZEL": 3, "PBO": 2}), TODAY)
    assert decided == [
        ev.ShipmentRequested(
            shipment_id="SH-0001", depot=DEPOT, site_id="0101", kits=["100002", "100003", "100005", "200003", "200004"],
            reason="manual", requested_on="2026-03-10",
        )
    ]  # fmt: skip
    state = apply(state, decided)
    assert status(state, "100002", "200004") == [KitStatus.IN_TRANSIT] * 2
    assert status(state, "100001", "100006", "200002") == [KitStatus.AT_DEPOT] * 3
    later = decide_request_shipment(state, demo, cmd.RequestShipment("0102", {"ZEL": 1}), TODAY)
    assert later[0].model_dump()["kits"] == ["100004"]
    with pytest.raises(SupplyRefused, match="depot DEPOT_US has 1 usable kits of ZEL, 2 requested"):
        decide_request_shipment(state, demo, cmd.RequestShipment("0102", {"ZEL": 2}), TODAY)
    with pytest.raises(InvalidInput, match="unknown site '0999'"):
        decide_request_shipment(state, demo, cmd.RequestShipment("0999", {"ZEL": 1}), TODAY)
    with pytest.raises(InvalidInput, match="at least one kit"):
        decide_request_shipment(state, demo, cmd.RequestShipment("0102", {"ZEL": 0}), TODAY)


def _shipped(demo: StudyDefinition) -> tuple[SupplyState, str, list[str]]:
    state = register(SupplyState("HTN-201"), demo, *STOCK)
    requested = decide_request_shipment(state, demo, cmd.RequestShipment("0101", {"ZEL": 3, "PBO": 2}), TODAY)
    state = apply(state, requested)
    shipment = requested[0]
    assert isinstance(shipment, ev.ShipmentRequested)
    return state, shipment.shipment_id, shipment.kits


def test_receiving_with_an_excursion_quarantines_exactly_the_kits_received_and_marks_the_rest_missing(
    demo: StudyDefinition,
) -> None:
    state, shipment, kits = _shipped(demo)
    receive = cmd.ReceiveShipment(shipment, ("100003", "100002", "200004"), True, "logger showed 12 °C for 3 h")
    site_refusal(demo, lambda: decide_receive(state, receive, TODAY), "SH-0001 has not been dispatched yet")
    state = apply(state, decide_dispatch(state, cmd.DispatchShipment(shipment, "1Z999"), TODAY))
    assert state.shipments[shipment].status == "dispatched"
    stray = cmd.ReceiveShipment(shipment, ("100002", "100004"), False)
    with pytest.raises(InvalidInput, match="kits 100004 are not in shipment SH-0001"):
        decide_receive(state, stray, TODAY)

    decided = decide_receive(state, receive, TODAY)
    received, quarantined = decided
    assert isinstance(received, ev.ShipmentReceived) and isinstance(quarantined, ev.KitsQuarantined)
    assert received.kits == ["100002", "100003", "200004"] and received.missing == ["100005", "200003"]
    assert quarantined.kits == ["100002", "100003", "200004"] and quarantined.shipment_id == shipment
    assert quarantined.reason == "temperature excursion reported on receipt: logger showed 12 °C for 3 h"
    state = apply(state, decided)
    assert status(state, "100002", "100003", "200004") == [KitStatus.QUARANTINED] * 3
    assert status(state, "100005", "200003") == [KitStatus.MISSING] * 2
    assert {state.kits[k].location for k in kits if state.kits[k].status is KitStatus.QUARANTINED} == {"0101"}
    assert [k for k, kit in state.kits.items() if kit.status is KitStatus.QUARANTINED] == [
        "100002", "100003", "200004"
    ]  # fmt: skip
    site_refusal(demo, lambda: decide_receive(state, receive, TODAY), "SH-0001 was already received")


def test_receiving_without_an_excursion_makes_the_kits_available_at_the_site(demo: StudyDefinition) -> None:
    state, shipment, kits = _shipped(demo)
    state = apply(state, decide_dispatch(state, cmd.DispatchShipment(shipment), TODAY))
    site_refusal(demo, lambda: decide_dispatch(state, cmd.DispatchShipment(shipment), TODAY), "already dispatched")
    decided = decide_receive(state, cmd.ReceiveShipment(shipment, tuple(kits), False), TODAY)
    assert [type(e) for e in decided] == [ev.ShipmentReceived]
    state = apply(state, decided)
    assert status(state, *kits) == [KitStatus.AVAILABLE] * len(kits)
    assert {state.kits[k].location for k in kits} == {"0101"}


def test_only_quarantined_kits_are_released_or_rejected(demo: StudyDefinition) -> None:
    state = register(SupplyState("HTN-201"), demo, *STOCK)
    state, kits = deliver(state, demo, "0101", {"ZEL": 2, "PBO": 1}, excursion=True)
    state, fine = deliver(state, demo, "0101", {"ZEL": 1})
    assert kits == ["100002", "100005", "200004"] and fine == ["100003"]
    evidence = "within the stability data (25 °C for 48 h)"
    site_refusal(demo, lambda: decide_assess(state, cmd.AssessQuarantine(("100002", "100003"), True, evidence)),
                 "kit 100003 is not in quarantine \\(available\\)")  # fmt: skip
    site_refusal(demo, lambda: decide_assess(state, cmd.AssessQuarantine(("100004",), False, evidence)),
                 "kit 100004 is not in quarantine \\(at_depot\\)")  # fmt: skip
    with pytest.raises(NotFound, match="kit 999999 is not in this study's kit list"):
        decide_assess(state, cmd.AssessQuarantine(("999999",), True, evidence))
    with pytest.raises(InvalidInput, match="on what evidence"):
        decide_assess(state, cmd.AssessQuarantine(("100002",), True, "  "))
    with pytest.raises(InvalidInput, match="name the quarantined kits"):
        decide_assess(state, cmd.AssessQuarantine((), True, evidence))

    released = decide_assess(state, cmd.AssessQuarantine(("100005", "100002"), True, evidence))
    assert released == [ev.KitsReleased(kits=["100002", "100005"], reason=evidence)]
    state = apply(state, released)
    rejected = decide_assess(state, cmd.AssessQuarantine(("200004",), False, "no stability data"))
    assert rejected == [ev.KitsRejected(kits=["200004"], reason="no stability data")]
    state = apply(state, rejected)
    assert status(state, "100002", "100005", "200004") == [KitStatus.AVAILABLE] * 2 + [KitStatus.REJECTED]
    site_refusal(demo, lambda: decide_assess(state, cmd.AssessQuarantine(("200004",), True, evidence)),
                 "kit 200004 is not in quarantine \\(rejected\\)")  # fmt: skip


# --- dispensing --------------------------------------------------------------------------------------------------


def consented(subject_id: str) -> ConsentView:
    signed = cev.ConsentRecordedOnPaper(
        subject_id=subject_id, site_id="0101", document_id="ICF", version="1.0", language="en",
        signed_on="2026-03-01", obtained_by="cora", obtained_by_name="Cora", choices=[],
    )  # fmt: skip
    return see(ConsentView(), signed)


def allocation(subject_id: str, arm: str | None, site: str = "0101") -> Allocation:
    levels = MappingProxyType({"SITE": site, "BLSBP": "LT160"})
    return Allocation(subject_id, site, "1001", f"{site}/LT160", levels, "2026-03-10", arm)


def context(
    subject_id: str = "0101-001",
    arm: str | None = "ZEL",
    visit_date: date | None = TODAY,
    subject_status: str = "enrolled",
    consent: ConsentView | None = None,
) -> DispenseContext:
    return DispenseContext(
        allocation(subject_id, arm), SubjectStatus("0101", subject_status),
        consent if consent is not None else consented(subject_id), visit_date,
    )  # fmt: skip


PHARMACY = (
    entry("300008", "ZEL", "2026-04-05"),  # shipped in February; within the do-not-dispense days of today
    entry("300001", "ZEL", "2026-04-20"),  # dispensable today, not at a visit on 2026-03-25
    entry("300002", "ZEL", "2026-09-30"),
    entry("300003", "ZEL", "2026-10-31"),
    entry("300004", "PBO", "2026-09-30"),
    entry("300005", "ZEL", "2026-11-30"),  # goes to the other site
    entry("300006", "ZEL", "2026-12-31"),  # arrives with an excursion
    entry("300007", "ZEL", "2027-03-31"),  # stays at the depot
)


def pharmacy(demo: StudyDefinition) -> SupplyState:
    """Site 0101 holds ZEL kits 300008 and 300001-300003 and PBO kit 300004 (shipped on 2026-02-10), and ZEL kit
    300006 in quarantine; site 0102 holds ZEL kit 300005; ZEL kit 300007 is at the depot."""
    state = register(SupplyState("HTN-201"), demo, *PHARMACY)
    state, kits = deliver(state, demo, "0101", {"ZEL": 4, "PBO": 1}, day=date(2026, 2, 10))
    assert kits == ["300001", "300002", "300003", "300004", "300008"]
    state, _ = deliver(state, demo, "0102", {"ZEL": 1})
    state, _ = deliver(state, demo, "0101", {"ZEL": 1}, excursion=True)
    assert status(state, "300008", "300001", "300004", "300005", "300006", "300007") == [
        KitStatus.AVAILABLE, KitStatus.AVAILABLE, KitStatus.AVAILABLE, KitStatus.AVAILABLE, KitStatus.QUARANTINED,
        KitStatus.AT_DEPOT,
    ]  # fmt: skip
    assert state.kits["300005"].location == "0102"
    return state


def dispense(
    state: SupplyState, demo: StudyDefinition, where: DispenseContext, visit: str = "DAY1", kit: str | None = None
) -> list[ev.IrtEvent]:
    subject = where.allocation.subject_id if where.allocation else "0101-001"
    return decide_dispense(state, demo, where, cmd.DispenseKits(subject, visit, kit), TODAY, VERSION)


def test_the_system_dispenses_the_first_expiring_kit_of_the_subjects_treatment_usable_on_the_visit_date(
    demo: StudyDefinition,
) -> None:
    state = pharmacy(demo)
    assert dispense(state, demo, context()) == [
        ev.KitDispensed(kit="300001", subject_id="0101-001", site_id="0101", visit="DAY1", dispensed_on="2026-03-10",
                        study_version=VERSION)
    ]  # fmt: skip
    later = dispense(state, demo, context(visit_date=date(2026, 3, 25)))
    assert [e.model_dump()["kit"] for e in later] == ["300002"]  # 300001 expires within 30 days of that visit
    assert later[0].model_dump()["dispensed_on"] == "2026-03-25"
    assert [e.model_dump()["kit"] for e in dispense(state, demo, context(arm="PBO"))] == ["300004"]
    assert [e.model_dump()["kit"] for e in dispense(state, demo, context(visit_date=None))] == ["300001"]
    late = dispense(state, demo, context(visit_date=date(2026, 3, 1)))  # 300008 would do for 2026-03-01, not today
    assert [(e.model_dump()["kit"], e.model_dump()["dispensed_on"]) for e in late] == [("300001", "2026-03-01")]
    assert [e.model_dump()["kit"] for e in dispense(state, demo, context(), kit="300001")] == ["300001"]


def test_a_scanned_kit_that_cannot_go_out_is_refused_in_words_that_name_no_treatment(demo: StudyDefinition) -> None:
    state = pharmacy(demo)
    visit_later = context(visit_date=date(2026, 3, 25))
    site_refusal(
        demo,
        lambda: dispense(state, demo, visit_later, kit="300001"),
        "kit 300001 expires on 2026-04-20, within the 30 do-not-dispense days of 2026-03-25",
    )
    entered_late = context(visit_date=date(2026, 3, 1))  # the kit leaves the shelf today, not on the visit date
    site_refusal(
        demo,
        lambda: dispense(state, demo, entered_late, kit="300008"),
        "kit 300008 expires on 2026-04-05, within the 30 do-not-dispense days of 2026-03-10",
    )
    site_refusal(
        demo, lambda: dispense(state, demo, context(), kit="300006"), "kit 300006 is in quarantine until it is assessed"
    )
    site_refusal(
        demo,
        lambda: dispense(state, demo, context(), kit="300005"),
        r"kit 300005 is not available at site 0101 \(available at 0102\)",
    )
    site_refusal(
        demo,
        lambda: dispense(state, demo, context(), kit="300007"),
        r"kit 300007 is not available at site 0101 \(at depot at DEPOT_US\)",
    )
    wrong = site_refusal(
        demo,
        lambda: dispense(state, demo, context(), kit="300004"),
        "kit 300004 is not the kit assigned at this visit: dispense kit 300001",
    )
    assert "PBO" not in wrong and "ZEL" not in wrong
    site_refusal(
        demo,
        lambda: dispense(state, demo, context(), kit="300003"),
        "kit 300003 is not the kit assigned at this visit: dispense kit 300001",
    )
    site_refusal(
        demo,
        lambda: dispense(state, demo, context(arm="PBO"), kit="300002"),
        "kit 300002 is not the kit assigned at this visit: dispense kit 300004",
    )
    site_refusal(demo, lambda: dispense(state, demo, context(), kit="999999"),
                 "kit 999999 is not in this study's kit list", NotFound)  # fmt: skip

    state = apply(state, dispense(state, demo, context(), kit="300001"))
    assert state.kits["300001"].status is KitStatus.DISPENSED and state.dispensed[("0101-001", "DAY1")] == ("300001",)
    site_refusal(demo, lambda: dispense(state, demo, context("0101-002"), kit="300001"),
                 r"kit 300001 is not available at site 0101 \(dispensed\)")  # fmt: skip


def test_a_scanned_kit_tells_the_site_nothing_about_its_treatment(demo: StudyDefinition) -> None:
    state = pharmacy(demo)
    outcomes: list[str] = []
    for kit in ("300003", "300004"):  # ZEL and PBO, both usable at the site; the system assigns 300001 to a ZEL subject
        # (scanning probes: a kit of the subject's own treatment must be refused exactly like one of the other)
        try:
            dispense(state, demo, context(), kit=kit)
            outcomes.append("dispensed")
        except SupplyRefused as refused:
            outcomes.append(refused.message.replace(kit, "<kit>"))
    assert outcomes[0] == outcomes[1], outcomes


def test_dispensing_refuses_a_visit_without_dispensing_a_second_dispensing_and_an_unrandomized_subject(
    demo: StudyDefinition,
) -> None:
    state = pharmacy(demo)
    site_refusal(
        demo,
        lambda: dispense(state, demo, context(), visit="WEEK2"),
        "nothing is dispensed at visit WEEK2 \\(dispensing visits: DAY1, WEEK4, WEEK8\\)",
    )
    site_refusal(demo, lambda: dispense(state, demo, context(arm=None)), "subject 0101-001 is not randomized")
    unrandomized = DispenseContext(None, SubjectStatus("0101", "enrolled"), consented("0101-001"), TODAY)
    site_refusal(demo, lambda: dispense(state, demo, unrandomized), "subject 0101-001 is not randomized")
    site_refusal(
        demo, lambda: dispense(state, demo, context(subject_status="withdrawn")), "subject 0101-001 is withdrawn"
    )
    withdrawn = see(
        consented("0101-001"),
        cev.ConsentWithdrawn(
            subject_id="0101-001", document_id="ICF", continues=["safety_follow_up"], withdrawn_on="2026-03-08"
        ),
    )
    site_refusal(
        demo,
        lambda: dispense(state, demo, context(consent=withdrawn)),
        "dispensing is refused: consent to ICF was withdrawn on 2026-03-08",
    )
    site_refusal(demo, lambda: dispense(state, demo, context(consent=ConsentView())),
                 "dispensing needs consent to ICF")  # fmt: skip

    state = apply(state, dispense(state, demo, context()))
    site_refusal(demo, lambda: dispense(state, demo, context()), "kit 300001 was already dispensed at DAY1")
    site_refusal(demo, lambda: dispense(state, demo, context(), kit="300003"), "already dispensed at DAY1")
    assert [e.model_dump()["kit"] for e in dispense(state, demo, context(), visit="WEEK4")] == ["300002"]


def test_a_site_out_of_usable_kits_is_told_so_without_the_treatment(demo: StudyDefinition) -> None:
    state = pharmacy(demo)
    for n in range(3):
        state = apply(state, dispense(state, demo, context(f"0101-00{n}")))
    message = site_refusal(demo, lambda: dispense(state, demo, context("0101-009")), "site 0101 has no usable kit")
    assert "resupplied automatically" in message
    assert [e.model_dump()["kit"] for e in dispense(state, demo, context("0101-009", arm="PBO"))] == ["300004"]


def test_only_a_dispensed_kit_comes_back(demo: StudyDefinition) -> None:
    state = pharmacy(demo)
    site_refusal(demo, lambda: decide_return(state, cmd.ReturnKit("300002", 3, "partly used"), TODAY),
                 r"kit 300002 was not dispensed \(available\)")  # fmt: skip
    state = apply(state, dispense(state, demo, context()))
    with pytest.raises(InvalidInput, match="condition is one of"):
        decide_return(state, cmd.ReturnKit("300001", 3, "eaten"), TODAY)
    with pytest.raises(InvalidInput, match="cannot be negative"):
        decide_return(state, cmd.ReturnKit("300001", -1, "partly used"), TODAY)
    returned = decide_return(state, cmd.ReturnKit("300001", 3, "partly used"), TODAY)
    assert returned == [ev.KitReturned(kit="300001", subject_id="0101-001", returned_on="2026-03-10",
                                       units_returned=3, condition="partly used")]  # fmt: skip
    state = apply(state, returned)
    assert state.kits["300001"].status is KitStatus.RETURNED
    site_refusal(demo, lambda: decide_return(state, cmd.ReturnKit("300001", 3, "partly used"), TODAY),
                 r"kit 300001 was not dispensed \(returned\)")  # fmt: skip


# --- resupply ----------------------------------------------------------------------------------------------------


def depot_stock(count: int, first: int, treatment: str, expiry: str = "2027-01-31") -> list[cmd.KitEntry]:
    return [entry(str(first + n), treatment, expiry) for n in range(count)]


def test_a_site_below_its_minimum_is_brought_to_its_maximum_counting_kits_in_transit(demo: StudyDefinition) -> None:
    stock = [*depot_stock(10, 400000, "ZEL"), *depot_stock(10, 500000, "PBO"), entry("400099", "ZEL", "2026-04-01")]
    state = register(SupplyState("HTN-201"), demo, *stock)
    decided = decide_resupply(state, demo, "0101", {}, TODAY)
    triggered, shipment = decided
    assert isinstance(triggered, ev.ResupplyTriggered) and isinstance(shipment, ev.ShipmentRequested)
    assert (triggered.reason, triggered.shipment_id, triggered.shortfall) == ("minimum", "SH-0001", 0)
    assert [(n.treatment, n.usable, n.predicted, n.requested) for n in triggered.needs] == [
        ("PBO", 0, 0, 8), ("ZEL", 0, 0, 8)
    ]  # fmt: skip
    assert len(shipment.kits) == 16 and "400099" not in shipment.kits and shipment.reason == "resupply"
    state = apply(state, decided)
    assert decide_resupply(state, demo, "0101", {}, TODAY) == []  # the 16 kits in transit count
    assert decide_resupply(state, demo, "0101", {"ZEL": 5}, TODAY) == []  # 8 - 5 = 3: not below the minimum
    assert decide_resupply(state, demo, "0102", {}, TODAY) != []  # another site's kits in transit do not count


def test_kits_due_within_the_prediction_window_trigger_a_shipment_before_the_minimum(demo: StudyDefinition) -> None:
    stock = [*depot_stock(10, 400000, "ZEL"), *depot_stock(10, 500000, "PBO")]
    state = register(SupplyState("HTN-201"), demo, *stock)
    state, _ = deliver(state, demo, "0101", {"ZEL": 3, "PBO": 3})
    assert decide_resupply(state, demo, "0101", {}, TODAY) == []
    assert decide_resupply(state, demo, "0101", {"PBO": 0}, TODAY) == []
    triggered, shipment = decide_resupply(state, demo, "0101", {"ZEL": 1}, TODAY)
    assert isinstance(triggered, ev.ResupplyTriggered) and isinstance(shipment, ev.ShipmentRequested)
    assert triggered.reason == "predicted"
    assert [(n.treatment, n.usable, n.predicted, n.requested) for n in triggered.needs] == [("ZEL", 3, 1, 6)]
    treatments = [state.kits[k].treatment for k in shipment.kits]
    assert treatments.count("ZEL") == 6 and treatments.count("PBO") == 1, "no shipment holds a single treatment"


def test_a_depot_shortfall_is_recorded_once_not_on_every_check(demo: StudyDefinition) -> None:
    state = register(SupplyState("HTN-201"), demo, *depot_stock(3, 400000, "ZEL", "2026-04-01"))  # all too short
    first = decide_resupply(state, demo, "0101", {}, TODAY)
    assert first == [
        ev.ResupplyTriggered(
            site_id="0101", reason="minimum", shipment_id=None, shortfall=16,
            needs=[ev.TreatmentNeed(treatment="PBO", usable=0, predicted=0, requested=8),
                   ev.TreatmentNeed(treatment="ZEL", usable=0, predicted=0, requested=8)],
        )
    ]  # fmt: skip
    state = apply(state, first)
    assert decide_resupply(state, demo, "0101", {}, TODAY) == []
    assert decide_resupply(state, demo, "0101", {}, TODAY + timedelta(days=1)) == []
    grown = decide_resupply(state, demo, "0101", {"ZEL": 2}, TODAY)  # a different shortfall is news
    assert [e.model_dump()["shortfall"] for e in grown] == [18]

    state = register(state, demo, *depot_stock(5, 410000, "ZEL"))
    partial = decide_resupply(state, demo, "0101", {}, TODAY)
    triggered, shipment = partial
    assert isinstance(triggered, ev.ResupplyTriggered) and isinstance(shipment, ev.ShipmentRequested)
    assert (triggered.shipment_id, triggered.shortfall, len(shipment.kits)) == ("SH-0001", 11, 5)


# --- the forecast ------------------------------------------------------------------------------------------------


def test_demand_counts_only_dispensing_visits_due_within_the_window(demo: StudyDefinition) -> None:
    today = date(2026, 3, 20)  # the window runs to 2026-04-03 (predict_days 14)
    day1 = {"DAY1": date(2026, 3, 6)}  # WEEK4 (day 29) due 2026-04-03, WEEK8 (day 57) due 2026-05-01
    subjects = [
        SubjectOutlook("A", "0101", "enrolled", day1),
        SubjectOutlook("B", "0101", "enrolled", {"DAY1": date(2026, 1, 30)}),  # WEEK8 due 2026-03-27, dispensed
        SubjectOutlook("C", "0101", "enrolled", {"DAY1": date(2026, 3, 7)}),  # WEEK4 due 2026-04-04: outside
        SubjectOutlook("D", "0101", "screening", {}),  # not randomized: one kit of every arm at DAY1
        SubjectOutlook("E", "0101", "withdrawn", day1),
        SubjectOutlook("F", "0102", "enrolled", {"DAY1": date(2026, 2, 20)}),  # WEEK4 due 2026-03-20: today
        SubjectOutlook("G", "0102", "enrolled", {"DAY1": date(2026, 2, 19)}),  # WEEK4 due 2026-03-19: past
        SubjectOutlook("H", "0102", "screen_failed", {}),
    ]
    arms = {"A": "ZEL", "B": "PBO", "C": "ZEL", "E": "PBO", "F": "PBO", "G": "ZEL"}
    allocations = {subject: allocation(subject, arm) for subject, arm in arms.items()}
    dispensed = {("B", "WEEK8"): ("600001",)}
    assert demand(demo, subjects, allocations, dispensed, today) == {
        "0101": {"ZEL": 2, "PBO": 1}, "0102": {"PBO": 1}
    }  # fmt: skip
    assert demand(demo, subjects, allocations, {}, today)["0101"] == {"ZEL": 2, "PBO": 2}
    assert demand(demo.model_copy(update={"supply": None}), subjects, allocations, {}, today) == {}
