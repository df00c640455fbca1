"""eCOA pages over HTTP (SQLite and PostgreSQL): the participant answers today's diary one question per screen
(skip logic from the server, Back keeps the answer, a required question is asked again, a review, one submission
however often it is sent); the site reads the entries, compliance, alerts and charts, the investigator acknowledges a
clinical alert with a note, the study home lists open eCOA alerts after a sweep; the offline assets are served."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.identity.support import PASSWORD, SITE_A, SITE_B, STUDY, add_user, client_class
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform
from trialstack.capture import commands as capture_cmd
from trialstack.capture import handlers as capture
from trialstack.capture.refs import VisitKey
from trialstack.clock import FixedClock
from trialstack.consent import commands as consent_cmd
from trialstack.consent import handlers as consent
from trialstack.ecoa import commands as ecoa_cmd
from trialstack.ecoa import handlers as ecoa
from trialstack.identity import commands as identity_cmd
from trialstack.identity import handlers as identity
from trialstack.identity.policy import Role
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor

TestClient = client_class()
STAFF = Actor("user:cora", "study_coordinator")
EVENING = datetime(2026, 1, 6, 0, 30, tzinfo=UTC)  # 18:30 on 5 January in Chicago
PHQ9 = {f"PHQ{n:02d}": "0" for n in range(1, 10)} | {"PHQ09": "2", "PHQ10": "1"}


def _consented(loaded: Platform, account: str | None) -> str:
    """A consented subject at 0101 with SCREENING and DAY1 on 2026-01-05; with an account activated by the
    participant (the consent invitation) when `account` is given."""
    with loaded.unit_of_work(STAFF) as uow:
        subject_id = capture.screen_subject(uow, STUDY, capture_cmd.ScreenSubject(SITE_A, "2026-01-05")).subject_id
        uow.commit()
    assert subject_id is not None
    with loaded.unit_of_work(STAFF) as uow:
        paper = consent_cmd.RecordPaperConsent(subject_id, "ICF", "1.0", "2026-01-05", choices={"BIOBANK": False})
        consent.record_paper_consent(uow, STUDY, SITE_A, ("cora", "Cora"), paper)
        uow.commit()
    for visit in ("SCREENING", "DAY1"):
        with loaded.unit_of_work(STAFF) as uow:
            capture.record_visit_date(
                uow, STUDY, capture_cmd.RecordVisitDate(subject_id, VisitKey(visit), "2026-01-05")
            )
            uow.commit()
    if account is not None:
        with loaded.unit_of_work(STAFF) as uow:
            code = consent.invite_participant(uow, STUDY, SITE_A, consent_cmd.InviteParticipant(subject_id)).code
            uow.commit()
        with loaded.unit_of_work(Actor(f"user:{account}", "participant")) as uow:
            consent.activate_participant(uow, consent_cmd.ActivateParticipant(code, account, PASSWORD))
            identity.open_participant_account(
                uow, identity_cmd.OpenParticipantAccount(account, PASSWORD, STUDY, SITE_A, subject_id)
            )
            uow.commit()
    return subject_id


@pytest.fixture
def subject(loaded: Platform, clock: FixedClock) -> str:
    """A consented subject at 0101 with DAY1 on 2026-01-05, whose participant account is `pat`; staff accounts."""
    clock.set(EVENING)
    subject_id = _consented(loaded, "pat")
    add_user(loaded, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    add_user(loaded, "ivan", Role.INVESTIGATOR, frozenset({SITE_A}))
    add_user(loaded, "bea", Role.STUDY_COORDINATOR, frozenset({SITE_B}))
    return subject_id


def _client(platform: Platform, username: str) -> Any:
    client = TestClient(create_app(platform), follow_redirects=False)
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


def _form(html: str) -> dict[str, str]:
    """The hidden fields of the page's form (csrf_token, client_id, at, a.ITEM)."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def _progress(html: str) -> str:
    found = re.search(r'class="p-progress">([^<]+)<', html)
    return found.group(1) if found else ""


def _legend(html: str) -> str:
    found = re.search(r"<legend>(?:<span[^>]*>[^<]*</span>)?([^<]+)", html)
    return found.group(1).strip() if found else ""


def test_the_participant_answers_todays_diary_one_question_per_screen(loaded: Platform, subject: str) -> None:
    client = _client(loaded, "pat")
    home = client.get("/participant")
    assert home.status_code == 200 and "Questionnaires today" in home.text and "Daily symptom diary" in home.text
    assert '<link rel="manifest" href="/static/ecoa/manifest.webmanifest">' in home.text
    listing = client.get("/participant/questionnaires")
    assert 'href="/participant/questionnaires/DIARY/2026-01-05"' in listing.text
    assert 'href="/participant/questionnaires/PHQ9/DAY1"' in listing.text
    assert "Monday 5 January" in listing.text

    url = "/participant/questionnaires/DIARY/2026-01-05"
    first = client.get(url)
    assert first.status_code == 200 and _progress(first.text) == "Question 1 of 7"
    fields = _form(first.text)
    client_id = fields["client_id"]
    no = client.post(url, data={**fields, "answer": "N", "go": "next"})
    assert _legend(no.text).startswith("How dizzy") and _progress(no.text) == "Question 2 of 6"  # TAKENAT skipped
    back = client.post(url, data={**_form(no.text), "answer": "4", "go": "back"})
    assert _legend(back.text).startswith("Did you take") and 'value="N" checked' in back.text
    yes = client.post(url, data={**_form(back.text), "answer": "Y", "go": "next"})
    assert _legend(yes.text).startswith("At what time") and _progress(yes.text) == "Question 2 of 7"
    empty = client.post(url, data={**_form(yes.text), "go": "next"})
    assert empty.status_code == 422 and "Please answer this question" in empty.text
    wrong = client.post(url, data={**_form(yes.text), "answer": "25:99", "go": "next"})
    assert wrong.status_code == 422 and "takes a time (HH:MM)" in wrong.text
    page = client.post(url, data={**_form(yes.text), "answer": "08:15", "go": "next"})
    assert _legend(page.text).startswith("How dizzy") and 'value="4" checked' in page.text  # kept from before Back
    for answer in ("4", "3", "0", "70", ""):
        page = client.post(url, data={**_form(page.text), "answer": answer, "go": "next"})
    assert "Check your answers" in page.text and "08:15" in page.text and "Mild" not in page.text
    review = _form(page.text)
    assert review["client_id"] == client_id and review["a.TAKEN"] == "Y" and "a.NOTES" not in review
    sent = client.post(url, data={**review, "go": "submit", "completed_at": "2026-01-05T18:29:00-06:00"})
    assert sent.status_code == 303 and sent.headers["location"].endswith("?done=DIARY:2026-01-05")
    again = client.post(url, data={**review, "go": "submit"})
    assert again.status_code == 404  # completed: no longer asked

    submitted = [e for e in store.read_stream(loaded.engine.connect(), "ecoa", f"{STUDY}/{subject}")
                 if e.event_type == "QuestionnaireSubmitted"]  # fmt: skip
    assert len(submitted) == 1
    payload = submitted[0].payload
    assert (payload["client_id"], payload["username"], payload["completed_at"]) == (
        client_id, "pat", "2026-01-05T18:29:00-06:00",
    )  # fmt: skip
    assert {a["item"] for a in payload["answers"]} == {"TAKEN", "TAKENAT", "DIZZY", "HEADACHE", "SWELLING",
                                                       "WELLBEING"}  # fmt: skip
    done = client.get("/participant/questionnaires?done=DIARY:2026-01-05")
    assert "Thank you" in done.text
    assert "Completed on your phone at 2026-01-05 18:29 (UTC-06:00); received at 2026-01-06 00:30 (UTC)" in done.text
    assert client.get(f"/studies/{STUDY}/subjects/{subject}/questionnaires").status_code == 403


def test_the_site_reads_entries_and_charts_and_the_investigator_acknowledges(
    loaded: Platform, subject: str, clock: FixedClock
) -> None:
    with loaded.unit_of_work(STAFF) as uow:
        command = ecoa_cmd.SubmitQuestionnaire(subject, "PHQ9", "DAY1", "tablet-00000001", PHQ9,
                                               "2026-01-05T18:20:00-06:00", "site_tablet")  # fmt: skip
        ecoa.submit_questionnaire(uow, STUDY, "cora", command)
        uow.commit()
    coordinator = _client(loaded, "cora")
    url = f"/studies/{STUDY}/subjects/{subject}/questionnaires"
    page = coordinator.get(url)
    assert page.status_code == 200, page.text
    assert "Site tablet" in page.text and "2026-01-05 18:20 (UTC-06:00)" in page.text and "TOTAL 2" in page.text
    assert "/static/vendor/chart-4.6.2.umd.js" in page.text and 'data-ecoa-chart="0"' in page.text
    assert "PHQ-9 item 9" in page.text and "Acknowledge" not in page.text  # coordinators do not acknowledge
    assert "<input" not in page.text.split('id="h-entries"')[1]  # answers are read-only
    casebook = coordinator.get(f"/studies/{STUDY}/subjects/{subject}")
    assert f'href="{url}"' in casebook.text
    assert _client(loaded, "bea").get(url).status_code == 404

    investigator = _client(loaded, "ivan")
    page = investigator.get(url)
    fields = _form(page.text.split('class="ecoa-ack"')[1])
    ack = f"{url}/alerts/PHQ9-ITEM9/acknowledge"
    blank = investigator.post(ack, data={**fields, "note": ""})
    assert blank.status_code == 422
    done = investigator.post(ack, data={**fields, "note": "Called the participant today; safe."})
    assert done.status_code == 303, done.text
    page = investigator.get(url + "?done=acknowledged")
    assert "Acknowledged by ivan" in page.text and "Called the participant today; safe." in page.text

    clock.set(datetime(2026, 1, 9, 12, 0, tzinfo=UTC))
    coordinator = _client(loaded, "cora")
    home = coordinator.get(f"/studies/{STUDY}")
    assert "No open questionnaire alert" in home.text
    ecoa.sweep_study(loaded.engine, loaded.unit_of_work, STUDY)
    home = coordinator.get(f"/studies/{STUDY}")
    assert "eCOA alerts" in home.text and f"{subject} · Missed entry" in home.text and "Compliance" in home.text
    page = coordinator.get(url)
    assert "✗ Missed" in page.text and "0 of 4 entries whose window closed" in page.text


def test_the_offline_assets_are_served_from_here(loaded: Platform, subject: str) -> None:
    client = _client(loaded, "pat")
    worker = client.get("/participant/sw.js")
    assert worker.status_code == 200 and worker.headers["service-worker-allowed"] == "/participant/"
    assert worker.headers["content-type"].startswith("text/javascript") and "trialstack-participant" in worker.text
    shell = client.get("/participant/questionnaires/offline")
    assert shell.status_code == 200 and "data-ecoa-shell" in shell.text and "/questionnaires/due" in shell.text
    assert client.get("/static/ecoa/manifest.webmanifest").json()["scope"] == "/participant/"
    assert client.get("/static/ecoa-offline.js").status_code == 200
    assert client.get("/static/vendor/chart-4.6.2.umd.js").text.startswith("/*!\n * Chart.js v4.6.2")


def test_the_site_tablet_is_handed_to_the_participant_and_taken_back_with_a_password(
    loaded: Platform, subject: str
) -> None:
    coordinator = _client(loaded, "cora")
    url = f"/studies/{STUDY}/subjects/{subject}/questionnaires"
    page = coordinator.get(url)
    assert "On the site tablet today" in page.text and "password of their account (pat)" in page.text
    handover = {"csrf_token": _form(page.text)["csrf_token"], "instrument": "PHQ9", "entry": "DAY1"}
    diary = coordinator.post(f"{url}/tablet", data={**handover, "instrument": "DIARY", "entry": "2026-01-05"})
    assert diary.status_code == 422 and "on their phone" in diary.text
    handed = coordinator.post(f"{url}/tablet", data=handover)
    assert handed.status_code == 303 and handed.headers["location"] == "/tablet"
    for elsewhere in (f"/studies/{STUDY}", url, f"/api/v1/studies/{STUDY}/ecoa/alerts", "/participant"):
        blocked = coordinator.get(elsewhere)
        assert blocked.status_code == 303 and blocked.headers["location"] == "/tablet", elsewhere
    assert coordinator.post("/logout", data=handover).headers["location"] == "/tablet"
    confirm = coordinator.get("/tablet")
    assert "This questionnaire is for you" in confirm.text and "pat" in confirm.text
    csrf = _form(confirm.text)["csrf_token"]
    wrong = coordinator.post("/tablet/confirm", data={"csrf_token": csrf, "password": "not-it"})
    assert wrong.status_code == 401
    assert coordinator.get("/tablet/questionnaire").headers["location"] == "/tablet"
    right = coordinator.post("/tablet/confirm", data={"csrf_token": csrf, "password": PASSWORD})
    assert right.headers["location"] == "/tablet/questionnaire"
    page = coordinator.get("/tablet/questionnaire")
    assert "On the study tablet" in page.text and _progress(page.text) == "Question 1 of 10"
    assert "Sign out" not in page.text and "ecoa-offline.js" not in page.text
    for _ in range(9):
        page = coordinator.post("/tablet/questionnaire", data={**_form(page.text), "answer": "0", "go": "next"})
    assert "Check your answers" in page.text  # PHQ10 skipped: no problem reported
    sent = coordinator.post("/tablet/questionnaire", data={**_form(page.text), "go": "submit"})
    assert sent.headers["location"] == "/tablet/done"
    with loaded.engine.connect() as connection:
        (submitted,) = [e for e in store.read_stream(connection, "ecoa", f"{STUDY}/{subject}")
                        if e.event_type == "QuestionnaireSubmitted"]  # fmt: skip
    assert (submitted.payload["username"], submitted.payload["mode"], submitted.actor_id) == (
        "pat", "site_tablet", "user:pat",
    )  # fmt: skip
    done = coordinator.get("/tablet/done")
    assert "give the tablet back" in done.text
    back = coordinator.post("/tablet/return", data={"csrf_token": csrf, "password": "not-it"})
    assert back.status_code == 401 and coordinator.get(f"/studies/{STUDY}").status_code == 303
    back = coordinator.post("/tablet/return", data={"csrf_token": csrf, "password": PASSWORD})
    assert back.status_code == 303 and back.headers["location"] == url
    assert coordinator.get(f"/studies/{STUDY}").status_code == 200
    assert "Site tablet" in coordinator.get(url).text


def test_without_an_account_the_coordinator_attests_the_handover(loaded: Platform, subject: str) -> None:
    other = _consented(loaded, None)
    coordinator = _client(loaded, "cora")
    url = f"/studies/{STUDY}/subjects/{other}/questionnaires"
    page = coordinator.get(url)
    assert "you attest the handover" in page.text
    handover = {"csrf_token": _form(page.text)["csrf_token"], "instrument": "GAD7", "entry": "DAY1"}
    assert coordinator.post(f"{url}/tablet", data=handover).status_code == 422
    assert coordinator.post(f"{url}/tablet", data={**handover, "attest": "yes"}).status_code == 303
    page = coordinator.get(coordinator.get("/tablet").headers["location"])
    for _ in range(7):
        page = coordinator.post("/tablet/questionnaire", data={**_form(page.text), "answer": "1", "go": "next"})
    assert coordinator.post("/tablet/questionnaire", data={**_form(page.text), "go": "submit"}).status_code == 303
    with loaded.engine.connect() as connection:
        (submitted,) = [e for e in store.read_stream(connection, "ecoa", f"{STUDY}/{other}")
                        if e.event_type == "QuestionnaireSubmitted"]  # fmt: skip
    assert (submitted.payload["username"], submitted.payload["mode"]) == ("cora", "site_tablet")
    assert submitted.actor_id == "user:cora"
