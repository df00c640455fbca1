"""The eCOA API through HTTP, on SQLite and PostgreSQL: what a participant has due (windows in their time zone, the
instruments to ask offline), a diary submitted from the phone and resent, a PHQ-9 on the site tablet raising a
clinical alert that the investigator acknowledges, refusals naming their field (a late entry names its window), the
participant's time zone, and the sweep's missed entries in the site's alert list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.api.test_consent_api import (
    BASE,
    PROBLEM,
    activate,
    invite,
    participant,
    positions,
    screened,
    written_since,
)
from tests.integration.identity.support import SITE_A, STUDY, add_user, bearer, client_class, token_for
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform
from trialstack.clock import FixedClock
from trialstack.ecoa import handlers as ecoa
from trialstack.identity.policy import Role

TestClient = client_class()
Headers = dict[str, str]
DIARY = {"TAKEN": "Y", "TAKENAT": "08:10", "DIZZY": "2", "HEADACHE": "3", "SWELLING": "0", "WELLBEING": "70"}
PHQ9 = {f"PHQ{n:02d}": "0" for n in range(1, 10)} | {"PHQ09": "1", "PHQ10": "1"}
EVENING = datetime(2026, 1, 6, 0, 30, tzinfo=UTC)  # 18:30 on 5 January in Chicago (site 0101)


@pytest.fixture
def world(loaded: Platform, clock: FixedClock) -> dict[str, Any]:
    """Staff of site 0101, a consented subject with SCREENING and DAY1 on 2026-01-05, and their own account."""
    people = {
        "coordinator": Role.STUDY_COORDINATOR,
        "investigator": Role.INVESTIGATOR,
        "monitor": Role.MONITOR,
    }
    clock.set(EVENING)
    who: dict[str, Headers] = {}
    for username, role in people.items():
        add_user(loaded, username, role, frozenset({SITE_A}))
        who[username] = bearer(token_for(loaded, username))
    client = TestClient(create_app(loaded))
    subject = screened(client, who["coordinator"])
    paper = {"document_id": "ICF", "version": "1.0", "signed_on": "2026-01-05", "language": "en",
             "choices": {"BIOBANK": False}}  # fmt: skip
    consented = client.post(f"{BASE}/subjects/{subject}/consent/paper", json=paper, headers=who["coordinator"])
    assert consented.status_code == 201, consented.text
    for visit in ("SCREENING", "DAY1"):
        dated = client.put(
            f"{BASE}/subjects/{subject}/visits/{visit}", json={"visit_date": "2026-01-05"}, headers=who["coordinator"]
        )
        assert dated.status_code == 200, dated.text
    assert activate(client, invite(client, who["coordinator"], subject)["code"], "pat").status_code == 201
    own, csrf = participant(loaded, "pat")
    return {"client": client, "who": who, "subject": subject, "own": own, "csrf": csrf}


def _diary(day: str, completed_at: str, client_id: str, answers: dict[str, str] = DIARY) -> dict[str, Any]:
    return {"instrument": "DIARY", "entry": day, "client_id": client_id, "answers": answers,
            "completed_at": completed_at}  # fmt: skip


def test_due_entries_carry_their_windows_and_the_instruments_to_ask_them_offline(world: dict[str, Any]) -> None:
    own, subject = world["own"], world["subject"]
    due = own.get(f"{BASE}/subjects/{subject}/questionnaires/due")
    assert due.status_code == 200, due.text
    body = due.json()
    assert body["time_zone"] == "America/Chicago" and body["now"] == "2026-01-05T18:30:00-06:00"
    entries = {(e["instrument"], e["entry"]): e for e in body["entries"]}
    diary = entries[("DIARY", "2026-01-05")]
    assert (diary["status"], diary["opens"], diary["closes"]) == ("open", "2026-01-05T17:00-06:00",
                                                                  "2026-01-06T01:59-06:00")  # fmt: skip
    assert entries[("DIARY", "2026-01-06")]["status"] == "upcoming"
    assert entries[("PHQ9", "DAY1")]["status"] == "open" and entries[("GAD7", "DAY1")]["status"] == "open"
    items = {item["id"]: item for item in body["instruments"]["DIARY"]["items"]}
    assert items["TAKENAT"]["show_if"] == 'TAKEN == "Y"'
    assert items["TAKENAT"]["show_if_tree"] == ["==", ["name", "TAKEN"], ["const", "Y"]]
    assert items["DIZZY"]["section"] == "Symptoms today" and (items["DIZZY"]["min"], items["DIZZY"]["max"]) == (0, 10)
    phq10 = next(i for i in body["instruments"]["PHQ9"]["items"] if i["id"] == "PHQ10")
    assert phq10["show_if_tree"][0] == ">" and phq10["options"][0] == {"code": "0", "label": "Not difficult at all",
                                                                        "value": 0}  # fmt: skip
    staff = world["client"].get(f"{BASE}/subjects/{subject}/questionnaires/due", headers=world["who"]["monitor"])
    assert staff.status_code == 200 and staff.json()["entries"] == body["entries"]


def test_a_diary_from_the_phone_is_scored_and_a_resend_writes_nothing(loaded: Platform, world: dict[str, Any]) -> None:
    own, csrf, subject, client = world["own"], world["csrf"], world["subject"], world["client"]
    url = f"{BASE}/subjects/{subject}/questionnaires"
    body = _diary("2026-01-05", "2026-01-05T18:20:00-06:00", "0b0f7c1e-device-0001")
    sent = own.post(url, json=body, headers=csrf)
    assert sent.status_code == 201, sent.text
    first = sent.json()
    assert (first["repeated"], first["username"], first["mode"]) == (False, "pat", "participant")
    assert first["scores"] == [{"score": "SYMPTOMS", "value": "5", "missing": 0}] and first["alerts"] == []
    assert (first["completed_at"], first["received_at"]) == ("2026-01-05T18:20:00-06:00",
                                                             "2026-01-06T00:30:00.000000Z")  # fmt: skip
    before = positions(loaded)
    again = own.post(url, json=body, headers=csrf)
    assert again.status_code == 200 and again.json()["repeated"] is True
    assert {k: v for k, v in again.json().items() if k not in ("repeated", "events")} == {
        k: v for k, v in first.items() if k not in ("repeated", "events")
    }
    assert written_since(loaded, before) == []
    read = client.get(url, headers=world["who"]["monitor"])
    assert read.status_code == 200, read.text
    rows = {(r["instrument"], r["entry"]): r for r in read.json()["entries"]}
    diary = rows[("DIARY", "2026-01-05")]
    assert (diary["status"], diary["completed_at"], diary["received_at"], diary["scores"]) == (
        "completed", "2026-01-05T18:20:00-06:00", "2026-01-06T00:30:00.000000Z", {"SYMPTOMS": "5"},
    )  # fmt: skip
    assert rows[("PHQ9", "DAY1")]["status"] == "due"
    due = own.get(f"{url}/due").json()["entries"]
    assert next(e for e in due if e["entry"] == "2026-01-05")["completed"] is True


def test_phq9_on_the_site_tablet_raises_an_alert_the_investigator_acknowledges(world: dict[str, Any]) -> None:
    client, who, subject = world["client"], world["who"], world["subject"]
    url = f"{BASE}/subjects/{subject}/questionnaires"
    phq9 = {"instrument": "PHQ9", "entry": "DAY1", "client_id": "tablet-000000001", "answers": PHQ9,
            "completed_at": "2026-01-05T18:25:00-06:00"}  # fmt: skip
    refused = client.post(url, json=phq9, headers=who["coordinator"])
    assert refused.status_code == 403 and refused.json()["field"] == "mode"
    assert client.post(url, json=phq9, headers=who["monitor"]).status_code == 403
    sent = client.post(url, json={**phq9, "mode": "site_tablet"}, headers=who["coordinator"])
    assert sent.status_code == 201, sent.text
    assert sent.json()["scores"][0] == {"score": "TOTAL", "value": "1", "missing": 0}
    assert [a["alert"] for a in sent.json()["alerts"]] == ["PHQ9-ITEM9"]
    assert sent.json()["username"] == "coordinator"
    alerts = client.get(f"{BASE}/ecoa/alerts", headers=who["monitor"])
    assert alerts.status_code == 200, alerts.text
    (clinical,) = [a for a in alerts.json()["alerts"] if a["kind"] == "clinical"]
    assert (clinical["alert"], clinical["client_id"], clinical["subject_id"]) == ("PHQ9-ITEM9", "tablet-000000001",
                                                                                  subject)  # fmt: skip
    ack_url = f"{BASE}/subjects/{subject}/ecoa/alerts/PHQ9-ITEM9/acknowledgement"
    ack = {"client_id": "tablet-000000001", "note": "Called the participant; no current risk."}
    assert client.post(ack_url, json=ack, headers=who["coordinator"]).status_code == 403
    empty = client.post(ack_url, json={**ack, "note": "  "}, headers=who["investigator"])
    assert empty.status_code == 422 and empty.json()["field"] == "note"
    done = client.post(ack_url, json=ack, headers=who["investigator"])
    assert done.status_code == 201, done.text
    assert done.json()["acknowledged_by"] == "investigator"
    assert client.post(ack_url, json=ack, headers=who["investigator"]).json()["field"] == "alert"
    remaining = client.get(f"{BASE}/ecoa/alerts", headers=who["monitor"]).json()["alerts"]
    assert not [a for a in remaining if a["kind"] == "clinical"]
    read = client.get(url, headers=who["investigator"]).json()
    assert read["alerts"][0]["acknowledged_by"] == "investigator" and read["alerts"][0]["note"] == ack["note"]


def test_refusals_name_their_field_and_a_late_entry_names_its_window(
    loaded: Platform, world: dict[str, Any], clock: FixedClock
) -> None:
    own, csrf, subject = world["own"], world["csrf"], world["subject"]
    url = f"{BASE}/subjects/{subject}/questionnaires"
    before = positions(loaded)
    cases = [
        (_diary("2026-01-05", "2026-01-05T18:20:00-06:00", "c-0000001", {**DIARY, "DIZZY": "11"}), "answers.DIZZY"),
        (_diary("2026-01-05", "2026-01-05T18:20:00-06:00", "c-0000002", {**DIARY, "TAKEN": "N"}), "answers.TAKENAT"),
        (_diary("2026-01-05", "2026-01-05T18:20:00-06:00", "c-0000003", {**DIARY, "OTHER": "1"}), "answers.OTHER"),
        (_diary("2026-01-05", "2026-01-05T18:20:00", "c-0000004"), "completed_at"),
        (_diary("2026-01-05", "2026-01-05T19:20:00-06:00", "c-0000005"), "completed_at"),  # ahead of the server
        (_diary("2026-01-07", "2026-01-05T18:20:00-06:00", "c-0000006"), "entry"),
        ({**_diary("2026-01-05", "2026-01-05T18:20:00-06:00", "c-0000007"), "instrument": "NOPE"}, "instrument"),
        ({**_diary("2026-01-05", "2026-01-05T18:20:00-06:00", "c-0000008"), "mode": "fax"}, "mode"),
    ]
    for body, field in cases:
        refused = own.post(url, json=body, headers=csrf)
        assert refused.status_code in (404, 409, 422), (field, refused.text)
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["field"] == field, (field, refused.json())
    assert written_since(loaded, before) == []

    clock.set(datetime(2026, 1, 8, 12, 0, tzinfo=UTC))
    own, csrf = participant(loaded, "pat")  # a new session: the first went idle
    late = own.post(url, json=_diary("2026-01-06", "2026-01-07T03:00:00-06:00", "c-0000009"), headers=csrf)
    assert late.status_code in (409, 422) and late.json()["field"] == "completed_at"
    assert "outside its window 2026-01-06T17:00-06:00 to 2026-01-07T01:59-06:00" in late.json()["detail"]
    offline = own.post(url, json=_diary("2026-01-07", "2026-01-07T20:00:00-06:00", "c-0000010"), headers=csrf)
    assert offline.status_code == 201, offline.text
    assert offline.json()["received_at"] == "2026-01-08T12:00:00.000000Z"


def test_a_participant_reaches_only_their_own_subject_and_sets_their_time_zone(world: dict[str, Any]) -> None:
    own, csrf, client, who = world["own"], world["csrf"], world["client"], world["who"]
    subject = world["subject"]
    other = screened(client, who["coordinator"])
    assert own.get(f"{BASE}/subjects/{other}/questionnaires/due").status_code == 404
    assert own.post(f"{BASE}/subjects/{other}/questionnaires", json=_diary("2026-01-05", "x", "c-00000001"),
                    headers=csrf).status_code == 404  # fmt: skip
    assert own.get(f"{BASE}/ecoa/alerts").status_code == 403
    url = f"{BASE}/subjects/{subject}/questionnaires/time-zone"
    bad = own.put(url, json={"time_zone": "Mars/Olympus_Mons"}, headers=csrf)
    assert bad.status_code == 422 and bad.json()["field"] == "time_zone"
    assert client.put(url, json={"time_zone": "Europe/Berlin"}, headers=who["coordinator"]).status_code == 403
    moved = own.put(url, json={"time_zone": "America/New_York"}, headers=csrf)
    assert moved.status_code == 200 and moved.json()["changed"] is True
    due = own.get(f"{BASE}/subjects/{subject}/questionnaires/due").json()
    assert due["time_zone"] == "America/New_York" and due["now"] == "2026-01-05T19:30:00-05:00"
    diary = next(e for e in due["entries"] if e["entry"] == "2026-01-05")
    assert diary["opens"] == "2026-01-05T17:00-05:00"


def test_the_sweep_puts_missed_entries_in_the_sites_alerts(
    loaded: Platform, world: dict[str, Any], clock: FixedClock
) -> None:
    clock.set(datetime(2026, 1, 9, 12, 0, tzinfo=UTC))
    assert ecoa.sweep_study(loaded.engine, loaded.unit_of_work, STUDY) > 0
    alerts = world["client"].get(f"{BASE}/ecoa/alerts", headers=world["who"]["coordinator"]).json()["alerts"]
    kinds = {(a["kind"], a["subject_id"]) for a in alerts}
    assert ("missed", world["subject"]) in kinds and ("compliance", world["subject"]) in kinds
    rows = world["client"].get(f"{BASE}/subjects/{world['subject']}/questionnaires",
                               headers=world["who"]["monitor"]).json()["entries"]  # fmt: skip
    assert {r["entry"]: r["status"] for r in rows if r["instrument"] == "DIARY"}["2026-01-06"] == "missed"
