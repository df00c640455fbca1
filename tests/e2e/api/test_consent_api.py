"""The consent API through HTTP, on SQLite and PostgreSQL: a coordinator invites, the participant activates their
account with the one-time code, reads, answers, signs (re-authenticated), the coordinator countersigns, and the
signed copy is the PDF whose SHA-256 the ledger holds. Around it: a participant reaches only their own subject,
codes are refused when reused, replaced or expired (and throttled), a wrong password writes only SignatureFailed,
paper consent, withdrawals, If-Match and Idempotency-Key."""

from __future__ import annotations

import hashlib
from datetime import timedelta
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
from trialstack.clock import FixedClock
from trialstack.identity.policy import Role
from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent

TestClient = client_class()
BASE = f"/api/v1/studies/{STUDY}"
PROBLEM = "application/problem+json"
PLATFORM_STREAMS = "_platform"
PARTICIPANT_PASSWORD = "Correct-Horse-9-battery"
RIGHT = {"Q1": "No, neither will know", "Q2": "Yes"}
Headers = dict[str, str]


@pytest.fixture
def api(loaded: Platform) -> tuple[Any, dict[str, Headers]]:
    people = {
        "coordinator": (Role.STUDY_COORDINATOR, frozenset({SITE_A})),
        "coordinator_b": (Role.STUDY_COORDINATOR, frozenset({SITE_B})),
        "monitor": (Role.MONITOR, frozenset({SITE_A, SITE_B})),
    }
    headers = {}
    for username, (role, sites) in people.items():
        add_user(loaded, username, role, sites)
        headers[username] = bearer(token_for(loaded, username))
    return TestClient(create_app(loaded)), headers


def screened(client: Any, who: Headers, site: str = SITE_A) -> str:
    created = client.post(f"{BASE}/subjects", json={"site_id": site, "screened_on": "2026-01-05"}, headers=who)
    assert created.status_code == 201, created.text
    return str(created.json()["subject_id"])


def invite(client: Any, who: Headers, subject: str, **body: Any) -> dict[str, Any]:
    invited = client.post(f"{BASE}/subjects/{subject}/participant-invitations", json=body, headers=who)
    assert invited.status_code == 201, invited.text
    return dict(invited.json())


def activate(client: Any, code: str, username: str) -> Any:
    return client.post(
        "/api/v1/participant-activations",
        json={"code": code, "username": username, "password": PARTICIPANT_PASSWORD},
    )


def participant(platform: Platform, username: str) -> tuple[Any, Headers]:
    """The participant's own browser: a client of its own, signed in with a session cookie (and its CSRF token)."""
    own = TestClient(create_app(platform))
    session = own.post("/api/v1/session", json={"username": username, "password": PARTICIPANT_PASSWORD})
    assert session.status_code == 201, session.text
    return own, {"X-CSRF-Token": session.json()["csrf_token"]}


def enrolled_participant(client: Any, platform: Platform, who: Headers, username: str) -> tuple[str, Any, Headers]:
    subject = screened(client, who)
    activated = activate(client, invite(client, who, subject)["code"], username)
    assert activated.status_code == 201, activated.text
    return (subject, *participant(platform, username))


def positions(platform: Platform) -> dict[str, int]:
    with platform.engine.connect() as connection:
        return {
            study: max((e.study_seq for e in store.read_study(connection, study, 0, 100_000)), default=0)
            for study in (STUDY, PLATFORM_STREAMS)
        }


def written_since(platform: Platform, before: dict[str, int]) -> list[RecordedEvent]:
    with platform.engine.connect() as connection:
        return [e for study, seq in before.items() for e in store.read_study(connection, study, seq, 100_000)]


def signature(language: str = "en", answers: dict[str, str] = RIGHT, **extra: Any) -> dict[str, Any]:
    return {
        "document_id": "ICF",
        "version": "1.0",
        "language": language,
        "printed_name": "Jürgen Müller",
        "password": PARTICIPANT_PASSWORD,
        "sections_read": {str(number): 45 for number in range(1, 8)},
        "answers": answers,
        "choices": {"BIOBANK": True},
        **extra,
    }


def test_invite_activate_read_sign_countersign_and_download_the_signed_copy(
    loaded: Platform, api: tuple[Any, dict[str, Headers]]
) -> None:
    client, who = api
    subject = screened(client, who["coordinator"])
    invitation = invite(client, who["coordinator"], subject, language="en", valid_hours=48)
    assert set(invitation) >= {"code", "expires_at", "invitation_id"}
    assert invitation["expires_at"].startswith("2026-01-07T09:00")

    activated = activate(client, invitation["code"].lower().replace("-", " "), "pat-one")
    assert activated.status_code == 201, activated.text
    assert activated.json() == {"study_id": STUDY, "subject_id": subject, "username": "pat-one"}
    own, csrf = participant(loaded, "pat-one")

    standing = own.get(f"{BASE}/subjects/{subject}/consent")
    assert standing.status_code == 200, standing.text
    (icf,) = standing.json()["documents"]
    assert icf["consented"] is False and icf["in_force"]["version"] == "1.0"
    assert icf["in_force"]["languages"] == ["en", "es"]
    assert standing.json()["participant"]["activated"] is True

    document = own.get(f"{BASE}/subjects/{subject}/consent/documents/ICF", params={"language": "en"})
    assert document.status_code == 200, document.text
    text = document.json()
    assert [s["number"] for s in text["sections"]] == list(range(1, 8))
    assert [q["id"] for q in text["questions"]] == ["Q1", "Q2"]
    assert all(set(q) == {"id", "section", "text", "options"} for q in text["questions"]), "answers never leave"
    assert "neither will know" not in str(text["questions"][0]).split("options")[0]
    assert [p["id"] for p in text["optional_parts"]] == ["BIOBANK"]
    assert len(text["document_sha256"]) == 64

    before = positions(loaded)
    wrong = own.post(
        f"{BASE}/subjects/{subject}/consent/signatures",
        json=signature(answers={**RIGHT, "Q1": "Yes, both will know"}),
        headers=csrf,
    )
    assert wrong.status_code == 422 and wrong.headers["content-type"] == PROBLEM, wrong.text
    assert wrong.json()["field"] == "answers.Q1" and wrong.json()["section"] == 3
    assert written_since(loaded, before) == []

    signed = own.post(
        f"{BASE}/subjects/{subject}/consent/signatures",
        json=signature(attempts={"Q1": 2}),
        headers=csrf,
    )
    assert signed.status_code == 201, signed.text
    first_copy = signed.json()["copy_sha256"]
    assert signed.json()["signed_at"].startswith("2026-01-05T09:00")
    assert own.get(f"{BASE}/subjects/{subject}/consent").json()["documents"][0]["awaiting_countersignature"]

    countersigned = client.post(
        f"{BASE}/subjects/{subject}/consent/countersignatures",
        json={"document_id": "ICF", "password": PASSWORD},
        headers=who["coordinator"],
    )
    assert countersigned.status_code == 201, countersigned.text
    final_copy = countersigned.json()["copy_sha256"]
    assert final_copy != first_copy

    with loaded.engine.connect() as connection:
        events = {e.event_type: e.payload for e in store.read_study(connection, STUDY, 0, 100_000)}
    assert events["ConsentSigned"]["copy_sha256"] == first_copy
    assert events["ConsentCountersigned"]["copy_sha256"] == final_copy
    assert events["ConsentCountersigned"]["printed_name"] == "Coordinator"
    assert events["ConsentCountersigned"]["role"] == "study_coordinator"
    for reader, headers in ((own, {}), (client, who["coordinator"]), (client, who["monitor"])):
        for sha in (first_copy, final_copy):
            pdf = reader.get(f"{BASE}/subjects/{subject}/consent/copies/{sha}", headers=headers)
            assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf", pdf.text
            assert pdf.content.startswith(b"%PDF") and hashlib.sha256(pdf.content).hexdigest() == sha
    unknown = own.get(f"{BASE}/subjects/{subject}/consent/copies/{'0' * 64}")
    assert unknown.status_code == 404 and unknown.json()["field"] == "sha256"

    (icf,) = client.get(f"{BASE}/subjects/{subject}/consent", headers=who["monitor"]).json()["documents"]
    assert (icf["signed_version"], icf["method"], icf["copy_sha256"]) == ("1.0", "electronic", final_copy)
    assert icf["awaiting_countersignature"] is False and icf["parts"] == {"BIOBANK": True}
    tracker = client.get(f"{BASE}/consent-tracker", headers=who["coordinator"]).json()
    (row,) = [r for r in tracker["rows"] if r["subject_id"] == subject]
    assert (row["signed_version"], row["countersigned_by"], row["username"]) == ("1.0", "coordinator", "pat-one")
    assert tracker["summary"]["signed"] == 1

    visit = client.put(
        f"{BASE}/subjects/{subject}/visits/SCREENING", json={"visit_date": "2026-01-05"}, headers=who["coordinator"]
    )
    assert visit.status_code == 200, visit.text


def test_a_participant_reaches_their_own_subject_and_nothing_else(
    loaded: Platform, api: tuple[Any, dict[str, Headers]]
) -> None:
    client, who = api
    subject, own, csrf = enrolled_participant(client, loaded, who["coordinator"], "pat-own")
    other = screened(client, who["coordinator"])
    for path in (f"/subjects/{other}/consent", f"/subjects/{other}/consent/documents/ICF"):
        hidden = own.get(BASE + path)
        assert hidden.status_code == 404 and hidden.headers["content-type"] == PROBLEM, (path, hidden.text)
    signing_another = own.post(f"{BASE}/subjects/{other}/consent/signatures", json=signature(), headers=csrf)
    assert signing_another.status_code == 404, signing_another.text
    staff_only = [
        ("GET", f"{BASE}/subjects", None),
        ("GET", f"{BASE}/subjects/{subject}", None),
        ("GET", f"{BASE}/consent-tracker", None),
        ("POST", f"{BASE}/subjects/{subject}/participant-invitations", {}),
        ("POST", f"{BASE}/subjects/{subject}/consent/countersignatures", {"document_id": "ICF", "password": "x"}),
        ("POST", f"{BASE}/subjects/{other}/consent/countersignatures", {"document_id": "ICF", "password": "x"}),
    ]
    for method, url, body in staff_only:
        refused = own.request(method, url, json=body, headers=csrf)
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM, (method, url, refused.text)
    assert own.get(f"{BASE}/subjects/{subject}/consent").status_code == 200
    # staff at another site do not see the subject either
    elsewhere = client.get(f"{BASE}/subjects/{subject}/consent", headers=who["coordinator_b"])
    assert elsewhere.status_code == 404


def test_a_code_works_once_until_it_expires_and_a_refused_activation_writes_nothing(
    loaded: Platform, clock: FixedClock, api: tuple[Any, dict[str, Headers]]
) -> None:
    client, who = api
    subject = screened(client, who["coordinator"])
    replaced = invite(client, who["coordinator"], subject)["code"]
    code = invite(client, who["coordinator"], subject)["code"]
    add_user(loaded, "taken-name")

    before = positions(loaded)
    for attempt, username, field in (
        ("ZZZZ-ZZZZ-ZZZZ", "pat-a", "code"),
        (replaced, "pat-a", "code"),
        (code, "taken-name", "username"),
        (code, "Not a Name!", "username"),
    ):
        refused = activate(client, attempt, username)
        assert 400 <= refused.status_code < 500 and refused.headers["content-type"] == PROBLEM, refused.text
        assert refused.json()["field"] == field, refused.text
    assert written_since(loaded, before) == []

    assert activate(client, code, "pat-a").status_code == 201
    before = positions(loaded)
    reused = activate(client, code, "pat-b")
    assert reused.status_code == 409 and reused.json()["field"] == "code", reused.text
    assert written_since(loaded, before) == []

    late = screened(client, who["coordinator"])
    expiring = invite(client, who["coordinator"], late, valid_hours=1)["code"]
    clock.advance(timedelta(hours=1, seconds=1))
    before = positions(loaded)
    expired = activate(client, expiring, "pat-late")
    assert expired.status_code == 409 and expired.json()["field"] == "code", expired.text
    assert "expired" in expired.json()["detail"]
    assert written_since(loaded, before) == []
    signed_in = client.post("/api/v1/session", json={"username": "pat-late", "password": PARTICIPANT_PASSWORD})
    assert signed_in.status_code == 401


def test_guessing_codes_is_throttled(loaded: Platform, api: tuple[Any, dict[str, Headers]]) -> None:
    client, who = api
    code = invite(client, who["coordinator"], screened(client, who["coordinator"]))["code"]
    for n in range(10):
        assert activate(client, f"AAAA-AAAA-AA{n:02d}", f"guess-{n}").status_code == 409
    throttled = activate(client, code, "pat-real")
    assert throttled.status_code == 429 and throttled.headers["content-type"] == PROBLEM, throttled.text
    assert int(throttled.headers["Retry-After"]) > 0


def test_a_wrong_password_at_signing_writes_only_signature_failed(
    loaded: Platform, api: tuple[Any, dict[str, Headers]]
) -> None:
    client, who = api
    subject, own, csrf = enrolled_participant(client, loaded, who["coordinator"], "pat-pw")
    before = positions(loaded)
    wrong = own.post(
        f"{BASE}/subjects/{subject}/consent/signatures", json=signature(password="not-my-password"), headers=csrf
    )
    assert wrong.status_code == 401 and wrong.headers["content-type"] == PROBLEM, wrong.text
    written = written_since(loaded, before)
    assert [(e.event_type, e.payload["username"]) for e in written] == [("SignatureFailed", "pat-pw")]
    assert own.get(f"{BASE}/subjects/{subject}/consent").json()["documents"][0]["consented"] is False

    assert own.post(f"{BASE}/subjects/{subject}/consent/signatures", json=signature(), headers=csrf).status_code == 201
    before = positions(loaded)
    counter = {"document_id": "ICF", "password": "not-my-password"}
    refused = client.post(
        f"{BASE}/subjects/{subject}/consent/countersignatures", json=counter, headers=who["coordinator"]
    )
    assert refused.status_code == 401, refused.text
    assert [e.event_type for e in written_since(loaded, before)] == ["SignatureFailed"]
    monitor = client.post(
        f"{BASE}/subjects/{subject}/consent/countersignatures",
        json={"document_id": "ICF", "password": PASSWORD},
        headers=who["monitor"],
    )
    assert monitor.status_code == 403 and monitor.headers["content-type"] == PROBLEM, monitor.text


def test_paper_consent_withdrawals_if_match_and_idempotency(
    loaded: Platform, api: tuple[Any, dict[str, Headers]]
) -> None:
    client, who = api
    site_b = who["coordinator_b"]
    subject = screened(client, site_b, SITE_B)
    never = client.post(
        f"{BASE}/subjects/{subject}/consent/withdrawals",
        json={"document_id": "ICF", "withdrawn_on": "2026-01-05", "reason": "changed mind"},
        headers=site_b,
    )
    assert never.status_code == 409 and never.json()["field"] == "document_id", never.text

    paper = {"document_id": "ICF", "version": "1.0", "signed_on": "2026-01-05", "choices": {"BIOBANK": True}}
    other_site = client.post(f"{BASE}/subjects/{subject}/consent/paper", json=paper, headers=who["coordinator"])
    assert other_site.status_code == 404, other_site.text
    keyed = {**site_b, "Idempotency-Key": "paper-1"}
    recorded = client.post(f"{BASE}/subjects/{subject}/consent/paper", json=paper, headers=keyed)
    assert recorded.status_code == 201, recorded.text
    assert [e["event_type"] for e in recorded.json()["events"]] == ["ConsentRecordedOnPaper"]
    replayed = client.post(f"{BASE}/subjects/{subject}/consent/paper", json=paper, headers=keyed)
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == recorded.json()

    standing = client.get(f"{BASE}/subjects/{subject}/consent", headers=site_b)
    (icf,) = standing.json()["documents"]
    assert (icf["method"], icf["signed_version"], icf["copy_sha256"]) == ("paper", "1.0", None)
    etag = standing.headers["ETag"]
    assert etag == recorded.headers["ETag"]

    part = {"document_id": "ICF", "part": "BIOBANK", "withdrawn_on": "2026-01-05", "reason": "no biobank"}
    withdrawn_part = client.post(
        f"{BASE}/subjects/{subject}/consent/withdrawals", json=part, headers={**site_b, "If-Match": etag}
    )
    assert withdrawn_part.status_code == 201, withdrawn_part.text
    whole = {
        "document_id": "ICF",
        "continues": ["safety_follow_up"],
        "withdrawn_on": "2026-01-05",
        "reason": "moving away",
    }
    stale = client.post(
        f"{BASE}/subjects/{subject}/consent/withdrawals", json=whole, headers={**site_b, "If-Match": etag}
    )
    assert stale.status_code == 412 and stale.json()["field"] == "If-Match", stale.text
    done = client.post(f"{BASE}/subjects/{subject}/consent/withdrawals", json=whole, headers=site_b)
    assert done.status_code == 201, done.text
    (icf,) = client.get(f"{BASE}/subjects/{subject}/consent", headers=site_b).json()["documents"]
    assert icf["withdrawn_on"] == "2026-01-05" and icf["continues"] == ["safety_follow_up"]
    assert icf["parts"] == {"BIOBANK": False} and icf["consented"] is False


def test_the_participant_withdraws_their_own_consent(loaded: Platform, api: tuple[Any, dict[str, Headers]]) -> None:
    client, who = api
    subject, own, csrf = enrolled_participant(client, loaded, who["coordinator"], "pat-leaving")
    assert own.post(f"{BASE}/subjects/{subject}/consent/signatures", json=signature(), headers=csrf).status_code == 201
    body = {"document_id": "ICF", "part": "BIOBANK", "withdrawn_on": "2026-01-05", "reason": "changed my mind"}
    withdrawn = own.post(f"{BASE}/subjects/{subject}/consent/withdrawals", json=body, headers=csrf)
    assert withdrawn.status_code == 201, withdrawn.text
    assert own.get(f"{BASE}/subjects/{subject}/consent").json()["documents"][0]["parts"] == {"BIOBANK": False}
    monitor = client.post(f"{BASE}/subjects/{subject}/consent/withdrawals", json=body, headers=who["monitor"])
    assert monitor.status_code == 403
