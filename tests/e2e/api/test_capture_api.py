"""The capture and query API through HTTP with real bearer tokens: live checks, problem+json, If-Match,
Idempotency-Key, site scoping and the ledger feed, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.identity.support import (
    PASSWORD,
    SITE_A,
    SITE_B,
    STUDY,
    add_user,
    bearer,
    client_class,
    token_for,
)
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform
from trialstack.identity.policy import Role
from trialstack.ledger import store

TestClient = client_class()
BASE = f"/api/v1/studies/{STUDY}"
PROBLEM = "application/problem+json"


@pytest.fixture
def api(loaded: Platform) -> tuple[Any, dict[str, dict[str, str]]]:
    people = {
        "coordinator": (Role.STUDY_COORDINATOR, frozenset({SITE_A})),
        "coordinator_b": (Role.STUDY_COORDINATOR, frozenset({SITE_B})),
        "monitor": (Role.MONITOR, frozenset({SITE_A, SITE_B})),
        "manager": (Role.DATA_MANAGER, frozenset()),
    }
    headers = {}
    for username, (role, sites) in people.items():
        add_user(loaded, username, role, sites)
        headers[username] = bearer(token_for(loaded, username))
    return TestClient(create_app(loaded)), headers


def ledger_size(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return store.count_events(connection, STUDY)


def screened_subject(client: Any, who: dict[str, str]) -> str:
    created = client.post(f"{BASE}/subjects", json={"site_id": SITE_A, "screened_on": "2026-01-05"}, headers=who)
    assert created.status_code == 201, created.text
    subject = str(created.json()["subject_id"])
    paper = {"document_id": "ICF", "version": "1.0", "signed_on": "2026-01-05", "choices": {"BIOBANK": False}}
    recorded = client.post(f"{BASE}/subjects/{subject}/consent/paper", json=paper, headers=who)
    assert recorded.status_code == 201, recorded.text  # the site records the signed consent before any data
    visit = client.put(f"{BASE}/subjects/{subject}/visits/SCREENING", json={"visit_date": "2026-01-05"}, headers=who)
    assert visit.status_code == 200, visit.text
    consent = {"items": {"ICDAT": {"value": "2026-01-05"}, "ICVERS": {"value": "1.0"}}}
    assert client.put(f"{BASE}/subjects/{subject}/forms/SCREENING.IC", json=consent, headers=who).status_code == 200
    return subject


VITALS = {"VSDAT": "2026-01-05", "SYSBP": 190, "DIABP": 95, "PULSE": 72, "WEIGHT": "80.5", "HEIGHT": 175}


def test_a_save_answers_with_every_check_and_the_query_it_opened(
    loaded: Platform, api: tuple[Any, dict[str, dict[str, str]]]
) -> None:
    client, who = api
    subject = screened_subject(client, who["coordinator"])
    body = {"items": {item: {"value": value} for item, value in VITALS.items()}}
    saved = client.put(f"{BASE}/subjects/{subject}/forms/SCREENING.VS", json=body, headers=who["coordinator"])
    assert saved.status_code == 200, saved.text
    answer = saved.json()
    results = {c["check_id"]: c["result"] for c in answer["checks"]}
    assert results["VS-SBP-ELIG"] == "fail" and results["VS-DBP-LT-SBP"] == "pass"
    assert [(q["check_id"], q["item"]) for q in answer["queries_opened"]] == [("VS-SBP-ELIG", "SYSBP")]
    assert saved.headers["ETag"] == f'"{answer["version"]}"'

    form = client.get(f"{BASE}/subjects/{subject}/forms/SCREENING.VS", headers=who["coordinator"]).json()
    sbp = next(i for i in form["items"] if i["item"] == "SYSBP")
    assert sbp["value"] == "190" and sbp["failing_checks"] == ["VS-SBP-ELIG"]

    stale = client.put(
        f"{BASE}/subjects/{subject}/forms/SCREENING.VS",
        json={"items": {"PULSE": {"value": 70}}, "reason": "re-measured"},
        headers={**who["coordinator"], "If-Match": '"1"'},
    )
    assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM

    fix = {"items": {"SYSBP": {"value": 165, "reason_for_change": "transcription error"}}}
    corrected = client.put(
        f"{BASE}/subjects/{subject}/forms/SCREENING.VS",
        json=fix,
        headers={**who["coordinator"], "If-Match": saved.headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text
    assert [q["automatic"] for q in corrected.json()["queries_closed"]] == [True]


@pytest.mark.parametrize(
    ("items", "field", "status"),
    [
        ({"SYSBP": {"value": "one-sixty"}}, "items.SYSBP", 422),
        ({"VSDAT": {"value": "2026-02-30"}}, "items.VSDAT", 422),
        ({"XYZ": {"value": "1"}}, "items.XYZ", 422),
        ({"WEIGHT": {"value": 80.5}}, "items.WEIGHT.value", 422),
        ({"TEMP": {"value": "45.0"}}, "items.TEMP", 409),
    ],
)
def test_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
    loaded: Platform, api: tuple[Any, dict[str, dict[str, str]]], items: dict[str, Any], field: str, status: int
) -> None:
    client, who = api
    subject = screened_subject(client, who["coordinator"])
    before = ledger_size(loaded)
    body = {"items": {**{item: {"value": value} for item, value in VITALS.items()}, **items}}
    response = client.put(f"{BASE}/subjects/{subject}/forms/SCREENING.VS", json=body, headers=who["coordinator"])
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == field
    assert ledger_size(loaded) == before


def test_an_idempotency_key_replays_the_first_answer(
    loaded: Platform, api: tuple[Any, dict[str, dict[str, str]]]
) -> None:
    client, who = api
    headers = {**who["coordinator"], "Idempotency-Key": "screen-7f3a"}
    body = {"site_id": SITE_A, "screened_on": "2026-01-05"}
    first = client.post(f"{BASE}/subjects", json=body, headers=headers)
    size = ledger_size(loaded)
    again = client.post(f"{BASE}/subjects", json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert ledger_size(loaded) == size
    other = client.post(f"{BASE}/subjects", json={**body, "screened_on": "2026-01-04"}, headers=headers)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"


def test_site_scoping_and_the_query_workflow_by_role(
    loaded: Platform, api: tuple[Any, dict[str, dict[str, str]]]
) -> None:
    client, who = api
    subject = screened_subject(client, who["coordinator"])
    hidden = client.get(f"{BASE}/subjects/{subject}", headers=who["coordinator_b"])
    assert hidden.status_code == 404 and hidden.headers["content-type"] == PROBLEM
    listed = client.get(f"{BASE}/subjects", headers=who["coordinator_b"]).json()["subjects"]
    assert listed == []

    opened = client.post(
        f"{BASE}/queries",
        json={"subject_id": subject, "form": "SCREENING.IC", "item": "ICDAT", "text": "Source shows 4 Jan?"},
        headers=who["monitor"],
    )
    assert opened.status_code == 201, opened.text
    query_id = opened.json()["query_id"]
    assert (
        client.post(f"{BASE}/queries/{query_id}/answer", json={"text": "x"}, headers=who["coordinator_b"]).status_code
        == 404
    )
    assert (
        client.post(
            f"{BASE}/queries/{query_id}/answer", json={"text": "5 Jan is right"}, headers=who["coordinator"]
        ).status_code
        == 200
    )
    refused = client.post(f"{BASE}/queries/{query_id}/close", json={"resolution": "ok"}, headers=who["coordinator"])
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert (
        client.post(f"{BASE}/queries/{query_id}/close", json={"resolution": "ok"}, headers=who["manager"]).status_code
        == 200
    )
    inbox = client.get(f"{BASE}/queries", params={"subject_id": subject}, headers=who["coordinator"]).json()["queries"]
    assert [(q["query_id"], q["status"], q["age_days"]) for q in inbox] == [(query_id, "closed", 0)]

    frozen = client.post(f"{BASE}/subjects/{subject}/forms/SCREENING.IC/freeze", headers=who["manager"])
    assert frozen.status_code == 200, frozen.text
    blocked = client.put(
        f"{BASE}/subjects/{subject}/forms/SCREENING.IC",
        json={"items": {"ICVERS": {"value": "2.0"}}, "reason": "re-consented"},
        headers=who["coordinator"],
    )
    assert blocked.status_code == 409 and "frozen" in blocked.json()["detail"]


def test_the_ledger_feed_pages_in_study_order(loaded: Platform, api: tuple[Any, dict[str, dict[str, str]]]) -> None:
    client, who = api
    screened_subject(client, who["coordinator"])
    first = client.get(f"{BASE}/events", params={"after": 0, "limit": 3}, headers=who["monitor"]).json()
    second = client.get(
        f"{BASE}/events", params={"after": first["next_after"], "limit": 500}, headers=who["monitor"]
    ).json()
    seqs = [e["study_seq"] for e in first["events"] + second["events"]]
    assert seqs == list(range(1, len(seqs) + 1)) and first["more"] is True and second["more"] is False
    assert "SubjectScreened" in {e["event_type"] for e in second["events"]}
    assert client.get(f"{BASE}/events", headers=who["coordinator"]).status_code == 403
    assert client.get("/openapi.json").json()["paths"]["/api/v1/studies/{study_id}/subjects/{subject_id}/forms/{form}"]


def test_a_signature_needs_the_password_and_a_later_change_invalidates_it(
    loaded: Platform, api: tuple[Any, dict[str, dict[str, str]]]
) -> None:
    client, who = api
    add_user(loaded, "investigator", Role.INVESTIGATOR, frozenset({SITE_A}))
    investigator = bearer(token_for(loaded, "investigator"))
    subject = screened_subject(client, who["coordinator"])
    meaning = "I confirm the data in this casebook are accurate and complete."
    wrong = client.post(
        f"{BASE}/subjects/{subject}/signatures",
        json={"password": "not-my-password", "meaning": meaning},
        headers=investigator,
    )
    assert wrong.status_code == 401 and wrong.headers["content-type"] == PROBLEM
    with loaded.engine.connect() as connection:
        failures = [e for e in store.read_study(connection, "_platform", 0, 1000) if e.event_type == "SignatureFailed"]
    assert [e.payload["username"] for e in failures] == ["investigator"]
    assert (
        client.post(
            f"{BASE}/subjects/{subject}/signatures",
            json={"password": PASSWORD, "meaning": meaning},
            headers=who["coordinator"],
        ).status_code
        == 403
    )

    signed = client.post(
        f"{BASE}/subjects/{subject}/signatures", json={"password": PASSWORD, "meaning": meaning}, headers=investigator
    )
    assert signed.status_code == 200, signed.text
    (signature,) = client.get(f"{BASE}/subjects/{subject}", headers=investigator).json()["signatures"]
    assert (
        signature["valid"] is True and signature["printed_name"] == "Investigator" and signature["meaning"] == meaning
    )
    assert len(signature["content_hash"]) == 64

    change = {"items": {"ICVERS": {"value": "1.1", "reason_for_change": "version misread"}}}
    changed = client.put(f"{BASE}/subjects/{subject}/forms/SCREENING.IC", json=change, headers=who["coordinator"])
    assert "SignatureInvalidated" in [e["event_type"] for e in changed.json()["events"]]
    (after,) = client.get(f"{BASE}/subjects/{subject}", headers=investigator).json()["signatures"]
    assert after["valid"] is False and after["invalidated_by"] == "form SCREENING.IC"


def test_the_event_stream_sends_the_ledger_as_server_sent_events(
    loaded: Platform, api: tuple[Any, dict[str, dict[str, str]]]
) -> None:
    client, who = api
    screened_subject(client, who["coordinator"])
    response = client.get(
        f"{BASE}/events/stream", params={"max_seconds": 0}, headers={**who["monitor"], "Last-Event-ID": "1"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    ids = [int(line[4:]) for line in response.text.splitlines() if line.startswith("id: ")]
    with loaded.engine.connect() as connection:
        last = store.count_events(connection, STUDY)
    assert ids == list(range(2, last + 1))
    assert "event: SubjectScreened" in response.text


def test_personal_data_is_shown_to_the_site_and_erased_only_by_data_management(
    loaded: Platform, api: tuple[Any, dict[str, dict[str, str]]]
) -> None:
    client, who = api
    subject = screened_subject(client, who["coordinator"])
    demographics = {"BRTHDAT": "1961-02-17", "SEX": "M", "RACE": "WHITE", "ETHNIC": "NOT REPORTED"}
    body = {"items": {k: {"value": v} for k, v in demographics.items()}}
    saved = client.put(f"{BASE}/subjects/{subject}/forms/SCREENING.DM", json=body, headers=who["coordinator"])
    assert saved.status_code == 200, saved.text
    shown = client.get(f"{BASE}/subjects/{subject}/forms/SCREENING.DM", headers=who["coordinator"]).json()
    assert "1961-02-17" in str(shown)
    feed = client.get(f"{BASE}/events?after=0", headers=who["manager"]).text
    assert "1961-02-17" not in feed and "value_hash" in feed

    erasure = f"{BASE}/subjects/{subject}/personal-data/erasure"
    size = ledger_size(loaded)
    refused = client.post(erasure, json={"reason": "asked"}, headers=who["coordinator"])
    assert refused.status_code == 403 and refused.headers["content-type"].startswith(PROBLEM)
    no_reason = client.post(erasure, json={"reason": ""}, headers=who["manager"])
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    assert ledger_size(loaded) == size
    erased = client.post(erasure, json={"reason": "participant request"}, headers=who["manager"])
    assert erased.status_code == 200, erased.text
    after = client.get(f"{BASE}/subjects/{subject}/forms/SCREENING.DM", headers=who["coordinator"]).json()
    assert "1961-02-17" not in str(after)
    again = client.post(erasure, json={"reason": "again"}, headers=who["manager"])
    assert again.status_code == 409 and "already erased" in again.text
