"""The IRT API through HTTP with real bearer tokens, on SQLite and PostgreSQL: randomize → dispense → return; a
shipment with a temperature excursion → quarantine → release; each refusal is a problem naming its field and
writes nothing; the arm reaches the unblinded pharmacist and nobody else (every GET scanned as blinded users);
emergency unblinding re-authenticates, answers the arm to the investigator alone and is listed without it."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest

from tests.e2e.api.irt_support import (
    ARMS,
    BLINDED,
    PROBLEM,
    Trial,
    enrolled,
    reveals_treatment,
    screened,
    stock_site,
    trial,
)
from tests.integration.identity.support import PASSWORD, SITE_A, SITE_B, STUDY
from trialstack.bootstrap import Platform
from trialstack.clock import FixedClock
from trialstack.ledger import store

PLATFORM_STREAMS = "_platform"
REASON = "Anaphylaxis needing emergency treatment: the treating physician must know the study drug."


@pytest.fixture
def t(loaded: Platform) -> Trial:
    return trial(loaded)


def refused(response: Any, status: int, field: str, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    if kind is not None:
        assert body["type"].endswith(f"/{kind}"), body
    return body


def randomized(t: Trial, sbp: int = 150) -> tuple[str, dict[str, Any]]:
    subject = enrolled(t, sbp=sbp)
    answer = t.post(f"/subjects/{subject}/randomization", as_="coordinator")
    assert answer.status_code == 201, answer.text
    return subject, answer.json()


def arm_of(t: Trial, subject: str) -> str:
    answer = t.get(f"/subjects/{subject}/randomization", as_="pharmacist")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["arm"])


# --- the happy paths -------------------------------------------------------------------------------------------------


def test_preview_randomize_dispense_and_return(t: Trial) -> None:
    stock_site(t)
    subject = enrolled(t, sbp=150)
    preview = t.get(f"/subjects/{subject}/randomization", as_="coordinator").json()
    assert preview["randomized"] is False
    assert preview["preview"] == {
        "visit": "DAY1", "scheme": "stratified_block", "ready": True, "stratum": f"{SITE_A}/LT160",
        "factors": {"SITE": SITE_A, "BLSBP": "LT160"}, "values": {"DAY1.VS.SYSBP": "150"}, "refusal": None,
    }  # fmt: skip

    answer = t.post(f"/subjects/{subject}/randomization", {"stratum": f"{SITE_A}/LT160"}, as_="coordinator")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["number"] == "1001" and body["stratum"] == f"{SITE_A}/LT160" and "arm" not in body
    assert body["values"] == {"DAY1.VS.SYSBP": "150"} and body["randomized_on"] == "2026-01-05"
    assert {e["event_type"] for e in body["events"]} >= {
        "RandomizationListGenerated", "SubjectRandomized", "TreatmentAllocated",
    }  # fmt: skip

    seen = t.get(f"/subjects/{subject}/randomization", as_="coordinator").json()
    assert seen["randomized"] is True and seen["number"] == "1001" and "arm" not in seen
    assert seen["factors"] == {"SITE": SITE_A, "BLSBP": "LT160"} and seen["values"] == {"DAY1.VS.SYSBP": "150"}
    assert seen["unblinded"] == []
    arm = arm_of(t, subject)
    assert arm in ARMS

    dispensed = t.post(f"/subjects/{subject}/dispensations", {"visit": "DAY1"}, as_="coordinator")
    assert dispensed.status_code == 201, dispensed.text
    (kit,) = dispensed.json()["kits"]
    assert dispensed.json()["dispensed_on"] == "2026-01-05" and not reveals_treatment(dispensed.text)
    kits = {k["kit"]: k for k in t.get("/irt/kits", as_="pharmacist").json()["kits"]}
    assert kits[kit]["treatment"] == arm and kits[kit]["status"] == "dispensed" and kits[kit]["subject_id"] == subject

    again = t.post(f"/subjects/{subject}/dispensations", {"visit": "DAY1"}, as_="coordinator")
    refused(again, 409, "visit", "supply-refused")

    returned = t.post(f"/kits/{kit}/return", {"units_returned": 3, "condition": "partly used"}, as_="coordinator")
    assert returned.status_code == 201, returned.text
    assert returned.json() == {**returned.json(), "kit": kit, "subject_id": subject, "units_returned": 3}
    row = next(k for k in t.get("/irt/kits", as_="coordinator").json()["kits"] if k["kit"] == kit)
    assert row["status"] == "returned" and row["condition"] == "partly used" and "treatment" not in row


def test_a_shipment_with_an_excursion_goes_to_quarantine_and_is_released(t: Trial) -> None:
    generated = {"depot": "DEPOT_US", "quantities": {"ZEL": 6, "PBO": 6}, "lot": "LOT-A01", "expiry": "2027-06-30",
                 "first_number": 7000}  # fmt: skip
    made = t.post("/irt/kits/generate", generated, as_="pharmacist")
    assert made.status_code == 201, made.text
    assert made.json()["registered"] == 12 and made.json()["first_number"] == "7000"

    requested = t.post("/irt/shipments", {"site_id": SITE_A, "quantities": {"ZEL": 3, "PBO": 3}}, as_="pharmacist")
    assert requested.status_code == 201, requested.text
    shipment = requested.json()
    assert shipment["site_id"] == SITE_A and len(shipment["kits"]) == 6 and shipment["reason"] == "manual"
    sid = shipment["shipment_id"]
    listed = t.get("/irt/shipments", as_="coordinator").json()["shipments"]
    assert [(s["shipment_id"], s["status"], s["kit_numbers"]) for s in listed] == [(sid, "requested", shipment["kits"])]
    assert "quantities" not in listed[0] and not reveals_treatment(str(listed))
    assert t.get("/irt/shipments", as_="pharmacist").json()["shipments"][0]["quantities"] == {"PBO": 3, "ZEL": 3}

    early = t.post(f"/irt/shipments/{sid}/receipt", {"kits": shipment["kits"], "temperature_excursion": False},
                   as_="coordinator")  # fmt: skip
    refused(early, 409, "shipment", "supply-refused")
    dispatched = t.post(f"/irt/shipments/{sid}/dispatch", {"tracking": "1Z0042"}, as_="pharmacist")
    assert dispatched.status_code == 200 and dispatched.json()["tracking"] == "1Z0042", dispatched.text

    arrived, lost = shipment["kits"][:-1], shipment["kits"][-1]
    receipt = {"kits": arrived, "temperature_excursion": True, "note": "logger: 11.2 °C for 3 h"}
    received = t.post(f"/irt/shipments/{sid}/receipt", receipt, as_="coordinator")
    assert received.status_code == 201, received.text
    assert received.json()["missing"] == [lost] and received.json()["quarantined"] == sorted(arrived)
    statuses = {k["kit"]: k["status"] for k in t.get("/irt/kits", as_="coordinator", shipment=sid).json()["kits"]}
    assert statuses == {**dict.fromkeys(arrived, "quarantined"), lost: "missing"}

    subject, _ = randomized(t)
    quarantined = t.post(f"/subjects/{subject}/dispensations", {"visit": "DAY1", "kit": arrived[0]},
                         as_="coordinator")  # fmt: skip
    assert "quarantine" in refused(quarantined, 409, "kit", "supply-refused")["detail"]

    release = {"kits": arrived, "release": True, "reason": "Within the stability data (25 °C for 72 h): usable"}
    assert t.post("/irt/quarantine", release, as_="coordinator").status_code == 403
    released = t.post("/irt/quarantine", release, as_="pharmacist")
    assert released.status_code == 200 and released.json()["status"] == "available", released.text
    available = t.get("/irt/kits", as_="coordinator", status="available", location=SITE_A).json()
    assert available["count"] == len(arrived)
    dispensed = t.post(f"/subjects/{subject}/dispensations", {"visit": "DAY1"}, as_="coordinator")
    assert dispensed.status_code == 201 and dispensed.json()["kits"][0] in arrived, dispensed.text


def test_a_kit_list_and_a_randomization_list_are_imported_with_their_checksums(t: Trial) -> None:
    csv = "kit,treatment,lot,expiry\n9001,ZEL,LOT-V1,2027-03-31\n9002,PBO,LOT-V1,2027-03-31\n"
    checksum = hashlib.sha256(csv.encode()).hexdigest()
    imported = t.post("/irt/kits", {"depot": "DEPOT_US", "csv": csv, "checksum": checksum.upper(),
                                    "file_name": "vendor.csv"}, as_="pharmacist")  # fmt: skip
    assert imported.status_code == 201, imported.text
    assert imported.json()["registered"] == 2 and imported.json()["checksum"] == checksum
    treatments = {k["kit"]: k["treatment"] for k in t.get("/irt/kits", as_="pharmacist").json()["kits"]}
    assert treatments == {"9001": "ZEL", "9002": "PBO"}

    rows = "".join(f"{SITE_A}/LT160,{arm}\n" for arm in ("PBO", "ZEL", "ZEL", "PBO"))
    listed = f"stratum,arm\n{rows}"
    sha = hashlib.sha256(listed.encode()).hexdigest()
    wrong = t.post("/irt/randomization-list/import", {"csv": listed, "checksum": "0" * 64}, as_="pharmacist")
    refused(wrong, 422, "checksum", "invalid-input")
    sealed = t.post("/irt/randomization-list/import", {"csv": listed, "checksum": sha}, as_="pharmacist")
    assert sealed.status_code == 201, sealed.text
    assert sealed.json()["source"] == "imported" and sealed.json()["strata"] == {f"{SITE_A}/LT160": 4}
    assert sealed.json()["file_checksum"] == sha and sealed.json()["seed_commitment"] is None

    subject, _ = randomized(t, sbp=150)
    assert arm_of(t, subject) == "PBO"  # the list's first entry for the stratum
    rows_ = t.get("/irt/randomizations", as_="pharmacist").json()
    assert [(r["subject_id"], r["arm"]) for r in rows_["randomizations"]] == [(subject, "PBO")]
    assert rows_["by_stratum"] == {f"{SITE_A}/LT160": {"PBO": 1}}


def test_generating_the_list_makes_the_study_live_once(t: Trial) -> None:
    generated = t.post("/irt/randomization-list", as_="pharmacist")
    assert generated.status_code == 201, generated.text
    body = generated.json()
    assert body["list_id"] == "L1" and set(body["strata"]) == {
        f"{site}/{level}" for site in (SITE_A, SITE_B) for level in ("LT160", "GE160")
    }
    assert all(60 <= entries < 66 for entries in body["strata"].values())  # whole blocks of 4 or 6
    assert len(body["seed_commitment"]) == 64 and not reveals_treatment(generated.text)
    before = t.ledger_size()
    refused(t.post("/irt/randomization-list", {}, as_="pharmacist"), 409, "strata", "randomization-list-exists")
    refused(t.post("/irt/randomization-list", {"strata": ["9999/LT160"]}, as_="pharmacist"), 422, "strata")
    assert t.ledger_size() == before
    extended = t.post("/irt/randomization-list", {"strata": [f"{SITE_A}/GE160"]}, as_="pharmacist")
    assert extended.status_code == 201 and list(extended.json()["strata"]) == [f"{SITE_A}/GE160"], extended.text


def test_resupply_ships_a_site_below_its_minimum(t: Trial) -> None:
    generated = {"depot": "DEPOT_US", "quantities": {"ZEL": 20, "PBO": 20}, "lot": "LOT-A01",
                 "expiry": "2027-06-30", "first_number": 3000}  # fmt: skip
    assert t.post("/irt/kits/generate", generated, as_="pharmacist").status_code == 201
    resupplied = t.post("/irt/resupply", as_="pharmacist")
    assert resupplied.status_code == 200, resupplied.text
    shipments = {s["site_id"]: s for s in resupplied.json()["shipments"]}
    assert set(shipments) == {SITE_A, SITE_B} and all(s["reason"] == "resupply" for s in shipments.values())
    assert {r["reason"] for r in resupplied.json()["resupplies"]} == {"minimum"}
    assert all(len(s["kits"]) == 16 for s in shipments.values())  # up to the maximum (8) of each treatment
    again = t.post("/irt/resupply", as_="pharmacist")
    assert again.status_code == 200 and again.json()["shipments"] == [], again.text  # in transit counts


# --- refusals: a problem naming the field, nothing written -----------------------------------------------------------


def test_randomizing_an_unenrolled_unconsented_or_randomized_subject_is_refused(t: Trial) -> None:
    screened_only = screened(t)
    before = t.ledger_size()
    preview = t.get(f"/subjects/{screened_only}/randomization", as_="coordinator").json()["preview"]
    assert preview["ready"] is False and preview["refusal"]["field"] == "subject"
    assert "screening" in preview["refusal"]["detail"]
    body = refused(t.post(f"/subjects/{screened_only}/randomization", as_="coordinator"), 409, "subject",
                   "randomization-refused")  # fmt: skip
    assert "only an enrolled subject" in body["detail"]
    assert t.ledger_size() == before

    no_vitals = enrolled(t, sbp=None)
    before = t.ledger_size()
    body = refused(t.post(f"/subjects/{no_vitals}/randomization", as_="coordinator"), 409, "stratification")
    assert "DAY1.VS.SYSBP not recorded" in body["detail"]
    assert t.ledger_size() == before

    withdrawn = enrolled(t)
    withdrawal = {"document_id": "ICF", "withdrawn_on": "2026-01-05", "reason": "Changed their mind"}
    assert t.post(f"/subjects/{withdrawn}/consent/withdrawals", withdrawal, as_="coordinator").status_code == 201
    before = t.ledger_size()
    body = refused(t.post(f"/subjects/{withdrawn}/randomization", as_="coordinator"), 409, "consent")
    assert "consent to ICF was withdrawn" in body["detail"]
    assert t.ledger_size() == before

    subject, first = randomized(t)
    changed = enrolled(t, sbp=170)
    before = t.ledger_size()
    body = refused(t.post(f"/subjects/{subject}/randomization", as_="coordinator"), 409, "subject")
    assert f"randomization number {first['number']}" in body["detail"]
    refused(t.post(f"/subjects/{changed}/randomization", {"stratum": f"{SITE_A}/LT160"}, as_="coordinator"), 409,
            "stratum", "stratum-changed")  # fmt: skip
    assert t.ledger_size() == before
    assert t.post(f"/subjects/{subject}/randomization", as_="monitor").status_code == 403
    assert t.post(f"/subjects/{subject}/randomization", as_="coordinator_b").status_code == 404


def test_dispensing_an_expired_or_quarantined_kit_is_refused(t: Trial, clock: FixedClock) -> None:
    short = {"depot": "DEPOT_US", "quantities": {"ZEL": 2, "PBO": 2}, "lot": "LOT-S01", "expiry": "2026-02-20",
             "first_number": 1000}  # fmt: skip
    assert t.post("/irt/kits/generate", short, as_="pharmacist").status_code == 201
    shipment = stock_site(t, per_arm=2, first_number=2000)  # first expiry first out: the short-dated kits go
    assert all(int(kit) < 2000 for kit in shipment["kits"]), shipment
    clock.advance(timedelta(days=20))  # 2026-01-25: the short lot now expires within the 30 do-not-dispense days
    subject = enrolled(t, day="2026-01-25")
    assert t.post(f"/subjects/{subject}/randomization", as_="coordinator").status_code == 201
    before = t.ledger_size()
    body = refused(t.post(f"/subjects/{subject}/dispensations", {"visit": "DAY1", "kit": shipment["kits"][0]},
                          as_="coordinator"), 409, "kit", "supply-refused")  # fmt: skip
    assert "do-not-dispense" in body["detail"] and not reveals_treatment(body["detail"])
    refused(t.post(f"/subjects/{subject}/dispensations", {"visit": "WEEK2"}, as_="coordinator"), 409, "visit")
    refused(t.post(f"/subjects/{subject}/dispensations", {"visit": "DAY1", "kit": "NOPE"}, as_="coordinator"),
            404, "kit")  # fmt: skip
    assert t.ledger_size() == before


def test_a_kit_list_with_a_duplicate_kit_number_is_refused_naming_the_line(t: Trial) -> None:
    before = t.ledger_size()
    duplicate = "kit;treatment;lot;expiry\n9001;ZEL;L1;2027-03-31\n9002;PBO;L1;2027-03-31\n9001;PBO;L1;2027-03-31\n"
    body = refused(t.post("/irt/kits", {"depot": "DEPOT_US", "csv": duplicate, "file_name": "vendor.csv"},
                          as_="pharmacist"), 422, "csv", "invalid-input")  # fmt: skip
    assert body["line"] == 4 and body["column"] == "kit", body
    assert "vendor.csv line 4" in body["detail"] and "duplicate of line 2" in body["detail"]
    bad_date = "kit,treatment,lot,expiry\n9001,ZEL,L1,31/03/2027\n"
    body = refused(t.post("/irt/kits", {"depot": "DEPOT_US", "csv": bad_date}, as_="pharmacist"), 422, "csv")
    assert body["line"] == 2 and body["column"] == "expiry"
    long_lot = f"kit,treatment,lot,expiry\n9001,ZEL,{'L' * 41},2027-03-31\n"
    body = refused(t.post("/irt/kits", {"depot": "DEPOT_US", "csv": long_lot}, as_="pharmacist"), 422, "csv")
    assert body["line"] == 2 and body["column"] == "lot"
    good = "kit,treatment,lot,expiry\n9001,ZEL,L1,2027-03-31\n"
    refused(t.post("/irt/kits", {"depot": "DEPOT_US", "csv": good, "checksum": "a" * 64}, as_="pharmacist"), 422,
            "checksum")  # fmt: skip
    refused(t.post("/irt/kits", {"depot": "NOWHERE", "csv": good}, as_="pharmacist"), 422, "depot")
    refused(t.post("/irt/kits", {"depot": "DEPOT_US", "csv": "kit,treatment\n1,ZEL\n"}, as_="pharmacist"), 422, "csv")
    refused(t.post("/irt/kits", {"depot": "DEPOT_US", "csv": "kit,treatment,lot,expiry\n1\x00,ZEL,L,2027-01-01\n"},
                   as_="pharmacist"), 422, "csv")  # fmt: skip
    generated = {"depot": "DEPOT_US", "quantities": {"XYZ": 1}, "lot": "L", "expiry": "2027-01-01", "first_number": 1}
    refused(t.post("/irt/kits/generate", generated, as_="pharmacist"), 422, "quantities.XYZ")
    assert t.post("/irt/kits", {"depot": "DEPOT_US", "csv": good}, as_="coordinator").status_code == 403
    assert t.ledger_size() == before


def test_an_idempotency_key_replays_a_randomization_and_a_kit_list(t: Trial) -> None:
    subject = enrolled(t)
    headers = {"Idempotency-Key": "randomize-0101-001"}
    first = t.post(f"/subjects/{subject}/randomization", as_="coordinator", **headers)
    assert first.status_code == 201, first.text
    size = t.ledger_size()
    again = t.post(f"/subjects/{subject}/randomization", as_="coordinator", **headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and t.ledger_size() == size

    generated = {"depot": "DEPOT_US", "quantities": {"ZEL": 2, "PBO": 2}, "lot": "LOT-A01", "expiry": "2027-06-30",
                 "first_number": 4000}  # fmt: skip
    made = t.post("/irt/kits/generate", generated, as_="pharmacist", **{"Idempotency-Key": "kits-4000"})
    assert made.status_code == 201, made.text
    size = t.ledger_size()
    replayed = t.post("/irt/kits/generate", generated, as_="pharmacist", **{"Idempotency-Key": "kits-4000"})
    assert replayed.json() == made.json() and t.ledger_size() == size  # one kit list, whatever the fresh seed
    other = t.post("/irt/kits/generate", {**generated, "first_number": 4100}, as_="pharmacist",
                   **{"Idempotency-Key": "kits-4000"})  # fmt: skip
    refused(other, 422, "Idempotency-Key")


# --- blinding and emergency unblinding -------------------------------------------------------------------------------


def test_the_arm_reaches_the_pharmacist_and_no_blinded_user(t: Trial) -> None:
    shipment = stock_site(t)
    subjects = [randomized(t, sbp)[0] for sbp in (150, 165, 140)]
    for subject in subjects:
        assert t.post(f"/subjects/{subject}/dispensations", {"visit": "DAY1"}, as_="coordinator").status_code == 201
    pending = enrolled(t)
    reason = {"reason": REASON, "password": PASSWORD}
    assert t.post(f"/subjects/{subjects[0]}/unblinding", reason, as_="investigator").status_code == 200

    gets = [
        *(f"/subjects/{s}/randomization" for s in [*subjects, pending]),
        "/irt/kits", "/irt/shipments", "/irt/unblindings", "/irt/randomizations",
        f"/irt/kits?shipment={shipment['shipment_id']}", f"/irt/kits?location={SITE_A}",
    ]  # fmt: skip
    answered = 0
    for who in BLINDED:
        for path in gets:
            response = t.client.get(f"/api/v1/studies/{STUDY}{path}", headers=t.who[who])
            assert response.status_code in (200, 403), (who, path, response.text)
            assert not reveals_treatment(response.text), (who, path, response.text)
            assert '"arm"' not in response.text and '"treatment"' not in response.text, (who, path)
            answered += response.status_code == 200
    assert answered >= 2 * len(gets) - 4  # the monitor reads subjects and unblindings, not supply

    pharmacist = t.get("/irt/randomizations", as_="pharmacist").json()["randomizations"]
    assert {r["subject_id"] for r in pharmacist} == set(subjects) and all(r["arm"] in ARMS for r in pharmacist)
    assert all(k["treatment"] in ARMS for k in t.get("/irt/kits", as_="pharmacist").json()["kits"])
    assert t.get("/irt/randomizations", as_="monitor").status_code == 403
    assert t.get("/irt/randomizations", as_="coordinator").status_code == 403


def test_emergency_unblinding_re_authenticates_and_is_listed_without_the_arm(t: Trial) -> None:
    subject, _ = randomized(t)
    arm = arm_of(t, subject)
    path = f"/subjects/{subject}/unblinding"

    with t.platform.engine.connect() as connection:
        platform_before = store.count_events(connection, PLATFORM_STREAMS)
    before = t.ledger_size()
    wrong = t.post(path, {"reason": REASON, "password": "not-my-password"}, as_="investigator")
    assert wrong.status_code == 401 and wrong.headers["content-type"] == PROBLEM, wrong.text
    assert t.ledger_size() == before
    with t.platform.engine.connect() as connection:
        written = store.read_study(connection, PLATFORM_STREAMS, 0, 100_000)
    assert [e.event_type for e in written][platform_before:] == ["SignatureFailed"]  # the attempt stays on record

    refused(t.post(path, {"reason": "urgent", "password": PASSWORD}, as_="investigator"), 422, "reason")
    refused(t.post(path, {"reason": "          ok         ", "password": PASSWORD}, as_="investigator"), 422,
            "reason")  # fmt: skip
    refused(t.post(path, {"password": PASSWORD}, as_="investigator"), 422, "reason")
    for role in ("coordinator", "pharmacist", "monitor"):
        assert t.post(path, {"reason": REASON, "password": PASSWORD}, as_=role).status_code == 403, role
    assert t.ledger_size() == before
    assert t.get(f"/subjects/{subject}/randomization", as_="coordinator").json()["unblinded"] == []

    unblinded = t.post(path, {"reason": REASON, "password": PASSWORD}, as_="investigator")
    assert unblinded.status_code == 200, unblinded.text
    body = unblinded.json()
    assert body["arm"] == arm and body["arm_name"].split()[0] in ("Zelvoprin", "Matching")
    assert body["unblinded_by"] == "investigator" and body["role"] == "investigator" and body["reason"] == REASON
    assert unblinded.headers["Cache-Control"] == "no-store"

    for who in ("coordinator", "monitor", "investigator", "pharmacist"):
        seen = t.get(f"/subjects/{subject}/randomization", as_=who).json()
        assert seen["unblinded"] == [{"on": "2026-01-05", "role": "investigator"}], who
        assert ("arm" in seen) is (who == "pharmacist"), who
        listed = t.get("/irt/unblindings", as_=who)
        assert listed.status_code == 200, listed.text
        (row,) = listed.json()["unblindings"]
        assert row == {"subject_id": subject, "number": "1001", "site_id": SITE_A, "username": "investigator",
                       "role": "investigator", "unblinded_on": "2026-01-05", "reason": REASON}  # fmt: skip
        assert not reveals_treatment(listed.text)
    assert t.get("/irt/unblindings", as_="coordinator_b").json()["unblindings"] == []
