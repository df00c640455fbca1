"""The KRI API through HTTP, on SQLite and PostgreSQL: every figure per site and over the caller's sites, scoped to
them; the drill-down rows; kri.read refused to site staff and the pharmacist; a blinded event changes nothing any
caller receives, while the supply events a blinded user may see (shipments, quarantine) do."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.identity.support import SITE_A, SITE_B, STUDY, add_user, bearer, client_class, token_for
from tests.integration.ops.scenario import Trial, conduct
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform
from trialstack.clock import FixedClock
from trialstack.identity.policy import Role
from trialstack.irt import events as irt
from trialstack.ledger.envelope import Actor
from trialstack.ledger.registry import encode

TestClient = client_class()
BASE = f"/api/v1/studies/{STUDY}/kris"
PROBLEM = "application/problem+json"
SYSTEM_IRT = Actor("system:irt", "system")


@pytest.fixture
def world(loaded: Platform, clock: FixedClock) -> dict[str, Any]:
    trial: Trial = conduct(loaded, clock)
    people = {
        "sponsor": (Role.SPONSOR_VIEWER, frozenset[str]()),
        "cra.a": (Role.MONITOR, frozenset({SITE_A})),
        "coord.a": (Role.STUDY_COORDINATOR, frozenset({SITE_A})),
        "pharmacist": (Role.UNBLINDED_PHARMACIST, frozenset({SITE_A})),
        "datamgr": (Role.DATA_MANAGER, frozenset[str]()),
    }
    who = {}
    for username, (role, sites) in people.items():
        add_user(loaded, username, role, sites)
        who[username] = bearer(token_for(loaded, username))
    return {"client": TestClient(create_app(loaded)), "who": who, "trial": trial}


def _kris(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {kri["kri"]: kri for kri in answer["kris"]}


def test_every_figure_per_site_and_study_wide_with_status_and_threshold(world: dict[str, Any]) -> None:
    answer = world["client"].get(BASE, headers=world["who"]["sponsor"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["scope"], body["sites"], body["as_of"], body["screened"]) == ("study", [SITE_A, SITE_B],
                                                                               "2026-03-20", 2)  # fmt: skip
    kris = _kris(body)
    assert len(kris) == 15 and {k["kri"] for k in body["not_available"]} == {"PROTOCOL_DEVIATIONS", "SAFETY_CLOCKS"}
    failures = kris["SCREEN_FAILURE_RATE"]
    assert failures["threshold"] == {"kri": "SCREEN_FAILURE_RATE", "warn": 30, "breach": 50, "direction": "above",
                                     "applies_to": "both"}  # fmt: skip
    assert failures["study"]["value"] == "50.0" and failures["study"]["status"] == "breach"
    site_b = next(site for site in failures["sites"] if site["site_id"] == SITE_B)
    assert (site_b["value"], site_b["status"], site_b["threshold"], site_b["numerator"]) == ("100.0", "breach", "50", 1)
    assert site_b["recorded"] is None, "no KRI check has run yet"
    ae = kris["AE_RATE"]
    assert ae["method"] == "funnel" and ae["threshold"] is None
    assert ae["sites"][0]["detail"]["funnel"]["centre"] == "82.26"
    assert body["enrolment"]["*"][0] == {"month": "2026-01", "actual": 1, "planned": "16.0"}


def test_a_monitor_of_one_site_gets_that_site_and_never_another(world: dict[str, Any]) -> None:
    client, headers = world["client"], world["who"]["cra.a"]
    body = client.get(BASE, headers=headers).json()
    assert body["scope"] == "your sites" and body["sites"] == [SITE_A]
    failures = _kris(body)["SCREEN_FAILURE_RATE"]
    assert [s["site_id"] for s in failures["sites"]] == [SITE_A] and failures["study"]["value"] == "0.0"
    assert body["enrolment"].keys() == {SITE_A, "*"}
    rows = client.get(f"{BASE}/query_age_over_30", headers=headers).json()["rows"]
    assert rows and {row["site_id"] for row in rows} == {SITE_A}
    refused = client.get(f"{BASE}/QUERY_AGE_OVER_30?site={SITE_B}", headers=headers)
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM


def test_the_drill_down_lists_what_the_figure_counts(world: dict[str, Any]) -> None:
    client, headers = world["client"], world["who"]["datamgr"]
    answer = client.get(f"{BASE}/QUERY_TURNAROUND", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["label"] == "Query turnaround" and body["truncated"] is False
    assert [(r["query_id"], r["days_to_close"]) for r in body["rows"]] == [(world["trial"].manual_query, 2)]
    site_b = client.get(f"{BASE}/SCREEN_FAILURE_RATE?site={SITE_B}", headers=headers).json()
    assert [(r["subject_id"], r["status"]) for r in site_b["rows"]] == [(world["trial"].failed, "screen_failed")]
    unknown = client.get(f"{BASE}/NO_SUCH_KRI", headers=headers)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    assert "QUERY_AGE_OVER_30" in unknown.json()["detail"]


def test_site_staff_and_the_pharmacist_may_not_read_kris(world: dict[str, Any]) -> None:
    for username in ("coord.a", "pharmacist"):
        refused = world["client"].get(BASE, headers=world["who"][username])
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM, username
    assert world["client"].get(BASE).status_code == 401


def test_a_blinded_event_changes_nothing_and_supply_events_move_the_figures(
    loaded: Platform, world: dict[str, Any]
) -> None:
    client, headers = world["client"], world["who"]["sponsor"]
    before = client.get(BASE, headers=headers).json()
    need = irt.TreatmentNeed(treatment="ZEL", usable=0, predicted=2, requested=4)
    blinded = irt.ResupplyTriggered(site_id=SITE_A, reason="predicted", needs=[need], shipment_id=None, shortfall=4)
    with loaded.unit_of_work(SYSTEM_IRT) as uow:
        uow.append(STUDY, "irt", f"{STUDY}/supply", [encode(blinded)], expected_version=0)
        uow.commit()
    assert client.get(BASE, headers=headers).json() == before, "the figures derive from no blinded event"
    shipped = irt.ShipmentRequested(shipment_id="SH-0001", depot="DEPOT_US", site_id=SITE_A, kits=["K-1", "K-2"],
                                    reason="resupply", requested_on="2026-03-20")  # fmt: skip
    held = irt.KitsQuarantined(kits=["K-1", "K-2"], reason="temperature excursion", shipment_id="SH-0001")
    with loaded.unit_of_work(SYSTEM_IRT) as uow:
        uow.append(STUDY, "irt", f"{STUDY}/supply", [encode(shipped), encode(held)], expected_version=1)
        uow.commit()
    after = client.get(BASE, headers=headers).json()
    assert after["seq"] > before["seq"]
    kits = _kris(after)["KITS_QUARANTINED"]
    assert [(s["site_id"], s["value"], s["status"]) for s in kits["sites"]] == [(SITE_A, "2", "breach"),
                                                                              (SITE_B, "0", "ok")]  # fmt: skip
    rows = client.get(f"{BASE}/KITS_QUARANTINED", headers=headers).json()["rows"]
    assert [(r["kit"], r["shipment_id"]) for r in rows] == [("K-1", "SH-0001"), ("K-2", "SH-0001")]
