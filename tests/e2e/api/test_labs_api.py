"""The labs API through HTTP on SQLite and PostgreSQL: HL7 and FHIR in (refusals as located 422 problems,
nothing written), a subject's results scoped to the caller's sites, triage by the data manager, alerts decided by
the investigator of the alert's site only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import shared_data
from tests.enrolling import enrolled_subject
from tests.integration.identity.support import SITE_A, SITE_B, STUDY, add_user, bearer, client_class, token_for
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform
from trialstack.identity.policy import Role

TestClient = client_class()
BASE = f"/api/v1/studies/{STUDY}"
HL7 = {"Content-Type": "application/hl7-v2"}


def oru(control: str, patient: str, potassium: str = "4.2", code: str = "2823-3") -> str:
    return "\r".join([
        f"MSH|^~\\&|LIS|CENTRAL|TRIALSTACK|HTN|20260105103000||ORU^R01^ORU_R01|{control}|P|2.5.1",
        f"PID|||{patient}^^^LIS^MR||||19700301|M",
        f"OBR|1||ACC-{control}|24320-4^Basic metabolic panel^LN|||20260105083000",
        f"OBX|1|NM|{code}^Potassium^LN||{potassium}|mmol/L|||||F|||20260105083000",
        "OBX|2|NM|2160-0^Creatinine^LN||97|umol/L|||||F|||20260105083000",
    ])  # fmt: skip


@pytest.fixture
def world(loaded: Platform) -> dict[str, Any]:
    subject = enrolled_subject(loaded, SITE_A)
    people = {
        "datamgr": (Role.DATA_MANAGER, frozenset[str]()),
        "inv.a": (Role.INVESTIGATOR, frozenset({SITE_A})),
        "inv.b": (Role.INVESTIGATOR, frozenset({SITE_B})),
        "coord.a": (Role.STUDY_COORDINATOR, frozenset({SITE_A})),
    }
    who = {}
    for username, (role, sites) in people.items():
        add_user(loaded, username, role, sites)
        who[username] = bearer(token_for(loaded, username))
    return {"client": TestClient(create_app(loaded)), "who": who, "subject": subject}


def post_hl7(world: dict[str, Any], text: str, user: str = "datamgr", **extra: str) -> Any:
    headers = {**world["who"][user], **HL7, **extra}
    return world["client"].post(f"{BASE}/labs/hl7?source=CENTRAL", content=text.encode(), headers=headers)


def test_hl7_results_are_stored_repeats_add_nothing_and_reads_are_site_scoped(world: dict[str, Any]) -> None:
    client, who, subject = world["client"], world["who"], world["subject"]
    answer = post_hl7(world, oru("M1", subject), **{"Idempotency-Key": "k-1"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["received"], answer.json()["committed"]) == (2, True)
    replay = post_hl7(world, oru("M1", subject), **{"Idempotency-Key": "k-1"})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == answer.json()
    assert post_hl7(world, oru("M1", subject)).json()["repeated"] == 2
    labs = client.get(f"{BASE}/subjects/{subject}/labs", headers=who["coord.a"])
    assert labs.status_code == 200 and {row["test"] for row in labs.json()["items"]} == {"K", "CREAT"}
    assert client.get(f"{BASE}/subjects/{subject}/labs", headers=who["inv.b"]).status_code == 404
    assert post_hl7(world, oru("M2", subject), user="coord.a").status_code == 403


def test_refused_results_are_a_located_problem_and_nothing_is_written(world: dict[str, Any]) -> None:
    client, who, subject = world["client"], world["who"], world["subject"]
    refused = post_hl7(world, oru("M3", subject, code="99999-9"))
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"].endswith("lab-import-refused") and "OBX 1" in problem["errors"][0]["location"]
    assert client.get(f"{BASE}/subjects/{subject}/labs", headers=who["coord.a"]).json()["count"] == 0
    fhir = client.post(f"{BASE}/labs/fhir?source=CENTRAL", content=b'{"resourceType": "Patient"}',
                       headers={**who["datamgr"], "Content-Type": "application/fhir+json"})  # fmt: skip
    assert fhir.status_code == 422 and fhir.json()["errors"][0]["field"] == "resourceType"


def test_synthea_results_wait_in_triage_for_the_data_manager(world: dict[str, Any]) -> None:
    client, who, subject = world["client"], world["who"], world["subject"]
    bundle = next(iter(sorted(shared_data("smart-synthea-fhir-r4").glob("*.json")))).read_bytes()
    answer = client.post(f"{BASE}/labs/fhir?source=CENTRAL&accept_valid=true", content=bundle,
                         headers={**who["datamgr"], "Content-Type": "application/fhir+json"})  # fmt: skip
    assert answer.status_code == 200, answer.text[:500]
    unmatched = answer.json()["unmatched"]
    triage = client.get(f"{BASE}/labs/triage", headers=who["datamgr"]).json()
    assert unmatched > 1 and triage["count"] == unmatched
    assert client.get(f"{BASE}/labs/triage", headers=who["coord.a"]).status_code == 403
    first, second = (item["triage_id"] for item in triage["items"][:2])
    no_reason = client.post(f"{BASE}/labs/triage/{first}/reject", json={"reason": " "}, headers=who["datamgr"])
    assert no_reason.status_code == 422
    rejected = client.post(f"{BASE}/labs/triage/{first}/reject", json={"reason": "not ours"}, headers=who["datamgr"])
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    again = client.post(f"{BASE}/labs/triage/{first}/reject", json={"reason": "twice"}, headers=who["datamgr"])
    assert again.status_code == 409
    unknown = client.post(f"{BASE}/labs/triage/{second}/assign", json={"subject_id": "9999-999", "reason": "typo"},
                          headers=who["datamgr"])  # fmt: skip
    assert unknown.status_code == 404
    left = client.get(f"{BASE}/labs/triage", headers=who["datamgr"]).json()["count"]
    assert left == unmatched - 1 and json.dumps(subject) not in json.dumps(triage)


def test_alerts_are_seen_and_decided_at_their_site_only(world: dict[str, Any]) -> None:
    client, who = world["client"], world["who"]
    assert post_hl7(world, oru("M4", world["subject"], potassium="6.8")).json()["alerts"] == 1
    (alert,) = client.get(f"{BASE}/labs/alerts", headers=who["inv.a"]).json()["items"]
    assert client.get(f"{BASE}/labs/alerts", headers=who["inv.b"]).json()["count"] == 0
    path = f"{BASE}/labs/alerts/{alert['alert_id']}"
    assert client.post(f"{path}/dismiss", json={"reason": "haemolysed"}, headers=who["inv.b"]).status_code == 404
    assert client.post(f"{path}/dismiss", json={"reason": "haemolysed"}, headers=who["datamgr"]).status_code == 403
    dismissed = client.post(f"{path}/dismiss", json={"reason": "haemolysed sample"}, headers=who["inv.a"])
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    (after,) = client.get(f"{BASE}/labs/alerts", headers=who["inv.a"]).json()["items"]
    assert after["status"] == "dismissed"
