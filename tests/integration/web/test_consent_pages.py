"""Consent pages over HTTP (SQLite and PostgreSQL): the participant app from activation to the signed copy, the
site's countersignature, paper consent and withdrawal, and the tracker per role and site; the error paths write
nothing."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from tests.conftest import REPO_ROOT
from tests.integration.identity.support import PASSWORD, SITE_A, SITE_B, STUDY, add_user, client_class
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.clock import FixedClock
from trialstack.consent import handlers as consent
from trialstack.consent.model import sections_of
from trialstack.consent.readmodel import consent_subject, tracker_rows
from trialstack.identity.policy import Role
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import ConsentVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.readmodel import version_in_force
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file
from trialstack.web.routes_participant import render_markdown

TestClient = client_class()
SITE = Actor("user:cora", "study_coordinator")
PARTICIPANT_PASSWORD = "Correct-Horse-9-battery"
CODE = re.compile(r'id="the-code">([A-Z0-9-]+)<')


def _screen(platform: Platform, site: str) -> str:
    with platform.unit_of_work(SITE) as uow:
        outcome = handlers.screen_subject(uow, STUDY, cmd.ScreenSubject(site, "2026-01-05"))
        uow.commit()
    return str(outcome.subject_id)


def _client(platform: Platform, username: str | None = None, password: str = PASSWORD) -> Any:
    client = TestClient(create_app(platform), follow_redirects=False)
    if username is not None:
        answer = client.post("/login", data={"username": username, "password": password, "next": "/"})
        assert answer.status_code == 303, answer.text
    return client


def _csrf(client: Any, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _events(platform: Platform, subject: str, kind: str) -> list[dict[str, Any]]:
    with platform.engine.connect() as connection:
        recorded = store.read_stream(connection, consent.CONSENT, consent.stream_id(STUDY, subject))
    return [e.payload for e in recorded if e.event_type == kind]


def _invite(staff: Any, subject: str) -> str:
    base = f"/studies/{STUDY}/subjects/{subject}/consent"
    answer = staff.post(
        f"{base}/invite", data={"csrf_token": _csrf(staff, base), "language": "en", "valid_hours": "72"}
    )
    assert answer.status_code == 200, answer.text
    found = CODE.search(answer.text)
    assert found, answer.text
    assert "shown only this once" in answer.text
    return found.group(1)


def _activate(platform: Platform, code: str, username: str = "pat-one") -> Any:
    client = _client(platform)
    answer = client.post(
        "/participant/activate",
        data={"code": code, "username": username, "password": PARTICIPANT_PASSWORD, "confirm": PARTICIPANT_PASSWORD},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/participant?welcome=1", answer.text
    return client


def _section_count(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        version = version_in_force(connection, STUDY)
    assert version is not None
    document = version.definition.consent[0]
    text = document.versions[0].text_in("en")
    assert text is not None
    return len(sections_of(document, text))


def _read_all(participant: Any, clock: FixedClock, sections: int, seconds: int = 20) -> None:
    start = participant.get("/participant/consent/ICF")
    assert start.headers["location"] == "/participant/consent/ICF/section/1"
    for number in range(1, sections + 1):
        path = f"/participant/consent/ICF/section/{number}"
        page = participant.get(path)
        assert page.status_code == 200 and f"Section {number} of {sections}" in page.text
        clock.advance(timedelta(seconds=seconds))
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        answer = participant.post(path, data={"csrf_token": token.group(1), "go": "next"})
        assert answer.status_code == 303
    assert answer.headers["location"] == "/participant/consent/ICF/questions"


@pytest.fixture
def people(loaded: Platform) -> Platform:
    add_user(loaded, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    add_user(loaded, "ivan", Role.INVESTIGATOR, frozenset({SITE_A}))
    add_user(loaded, "bert", Role.STUDY_COORDINATOR, frozenset({SITE_B}))
    add_user(loaded, "mona", Role.MONITOR)
    return loaded


def test_a_participant_activates_reads_signs_and_downloads_and_the_site_countersigns(
    people: Platform, clock: FixedClock
) -> None:
    subject = _screen(people, SITE_A)
    cora = _client(people, "cora")
    code = _invite(cora, subject)

    visitor = _client(people)
    form = {"code": code, "username": "pat-one", "password": PARTICIPANT_PASSWORD, "confirm": "something-else-1"}
    refused = visitor.post("/participant/activate", data=form)
    assert refused.status_code == 422 and "The two passwords are not the same." in refused.text
    weak = visitor.post("/participant/activate", data={**form, "password": "short", "confirm": "short"})
    assert weak.status_code == 422 and 'id="err-password"' in weak.text and "password refused" in weak.text
    with people.engine.connect() as connection:
        row = consent_subject(connection, STUDY, subject)
    assert row is not None and row.username is None  # nothing written

    participant = _activate(people, code.lower())
    home = participant.get("/participant")
    assert home.status_code == 200 and "Read and sign" in home.text and 'class="tabs"' not in home.text
    again = _client(people).post(
        "/participant/activate",
        data={"code": code, "username": "pat-two", "password": PARTICIPANT_PASSWORD, "confirm": PARTICIPANT_PASSWORD},
    )
    assert again.status_code == 422 and "already used" in again.text

    sections = _section_count(people)
    _read_all(participant, clock, sections)
    token = _csrf(participant, "/participant/consent/ICF/questions")
    wrong = {"csrf_token": token, "answers.Q1": "Yes, both will know", "answers.Q2": "Yes"}
    assert participant.post("/participant/consent/ICF/questions", data=wrong).headers["location"].endswith("/sign")
    token = _csrf(participant, "/participant/consent/ICF/sign")
    signing = {"csrf_token": token, "choices.BIOBANK": "yes", "printed_name": "Jürgen Müller"}
    sent_back = participant.post("/participant/consent/ICF/sign", data={**signing, "password": PARTICIPANT_PASSWORD})
    assert sent_back.headers["location"] == "/participant/consent/ICF/section/3"
    section = participant.get("/participant/consent/ICF/section/3")
    assert "read section 3 again" in section.text and "Back to the questions" in section.text
    clock.advance(timedelta(seconds=15))
    back = participant.post("/participant/consent/ICF/section/3", data={"csrf_token": token, "go": "next"})
    assert back.headers["location"] == "/participant/consent/ICF/questions"
    assert participant.get("/participant/consent/ICF/sign").headers["location"].endswith("/questions")
    right = {"csrf_token": token, "answers.Q1": "No, neither will know", "answers.Q2": "Yes"}
    participant.post("/participant/consent/ICF/questions", data=right)

    bad_password = participant.post("/participant/consent/ICF/sign", data={**signing, "password": "not-it-at-all-9"})
    assert bad_password.status_code == 422 and 'id="err-password"' in bad_password.text
    assert 'value="yes" required checked' in bad_password.text  # the BIOBANK answer is kept
    done = participant.post("/participant/consent/ICF/sign", data={**signing, "password": PARTICIPANT_PASSWORD})
    assert done.headers["location"] == "/participant/consent/ICF/signed", done.text
    [signed] = _events(people, subject, "ConsentSigned")
    assert {s["section"]: s["seconds"] for s in signed["sections_read"]} == {
        n: 20 + (15 if n == 3 else 0) for n in range(1, sections + 1)
    }
    assert {a["question"]: a["attempts"] for a in signed["answers"]} == {"Q1": 2, "Q2": 1}
    assert "Jürgen" not in str(signed)  # the typed name is in the vault, not the event
    confirmation = participant.get("/participant/consent/ICF/signed")
    assert signed["copy_sha256"] in confirmation.text
    pdf = participant.get(f"/participant/copies/{signed['copy_sha256']}")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("attachment")
    assert hashlib.sha256(pdf.content).hexdigest() == signed["copy_sha256"]
    assert "Nothing to sign right now." in participant.get("/participant").text

    ivan = _client(people, "ivan")
    base = f"/studies/{STUDY}/subjects/{subject}/consent"
    token = _csrf(ivan, base)
    refused = ivan.post(f"{base}/ICF/countersign", data={"csrf_token": token, "password": "wrong-password-1"})
    assert refused.status_code == 422 and 'id="err-password"' in refused.text
    assert _events(people, subject, "ConsentCountersigned") == []
    countersigned = ivan.post(f"{base}/ICF/countersign", data={"csrf_token": token, "password": PASSWORD})
    assert countersigned.headers["location"] == f"{base}?done=countersigned", countersigned.text
    [counter] = _events(people, subject, "ConsentCountersigned")
    copy = participant.get(f"/participant/copies/{counter['copy_sha256']}")
    assert hashlib.sha256(copy.content).hexdigest() == counter["copy_sha256"]
    staff_copy = ivan.get(f"{base}/copies/{counter['copy_sha256']}")
    assert staff_copy.status_code == 200 and staff_copy.content == copy.content


def test_the_tracker_shows_the_users_sites_and_filters_the_work(people: Platform, clock: FixedClock) -> None:
    a1, a2, b1 = _screen(people, SITE_A), _screen(people, SITE_A), _screen(people, SITE_B)
    cora, bert, mona = _client(people, "cora"), _client(people, "bert"), _client(people, "mona")
    participant = _activate(people, _invite(cora, a1))
    _read_all(participant, clock, _section_count(people), seconds=5)
    token = _csrf(participant, "/participant/consent/ICF/questions")
    participant.post(
        "/participant/consent/ICF/questions",
        data={"csrf_token": token, "answers.Q1": "No, neither will know", "answers.Q2": "Yes"},
    )
    participant.post(
        "/participant/consent/ICF/sign",
        data={
            "csrf_token": token,
            "choices.BIOBANK": "no",
            "printed_name": "Ann Example",
            "password": PARTICIPANT_PASSWORD,
        },
    )

    def subjects(client: Any, query: str = "") -> set[str]:
        page = client.get(f"/studies/{STUDY}/consent{query}")
        assert page.status_code == 200, page.text
        return set(re.findall(r'<tr data-subject="([^"]+)">', page.text))

    assert subjects(cora) == {a1, a2}
    assert subjects(bert) == {b1}
    assert subjects(mona) == {a1, a2, b1}
    assert subjects(cora, "?show=countersign") == {a1}
    assert subjects(cora, "?show=reconsent") == set()
    assert subjects(bert, "?show=countersign") == set()
    with people.engine.connect() as connection:
        [row] = tracker_rows(connection, STUDY, frozenset({SITE_A}), a1)
    assert row["method"] == "electronic" and row["awaiting_countersignature"] and row["parts"] == "BIOBANK=no"

    # a monitor reads, but may not obtain consent; site B staff do not see site A's subjects
    page = mona.get(f"/studies/{STUDY}/subjects/{a1}/consent")
    assert page.status_code == 200 and "Countersign" not in page.text and "/invite" not in page.text
    assert bert.get(f"/studies/{STUDY}/subjects/{a1}/consent").status_code == 404
    token = _csrf(bert, f"/studies/{STUDY}/subjects/{b1}/consent")
    assert bert.post(f"/studies/{STUDY}/subjects/{a1}/consent/invite", data={"csrf_token": token}).status_code == 404
    token = _csrf(mona, f"/studies/{STUDY}/subjects/{a1}/consent")
    assert mona.post(f"/studies/{STUDY}/subjects/{a2}/consent/invite", data={"csrf_token": token}).status_code == 403

    # a participant: their own app only
    assert participant.get(f"/studies/{STUDY}/subjects/{a2}/consent").status_code == 404
    assert participant.get(f"/studies/{STUDY}/subjects/{b1}/consent").status_code == 404
    assert participant.get(f"/studies/{STUDY}/subjects/{a1}/consent").status_code == 403
    assert participant.get(f"/studies/{STUDY}/consent").status_code == 403
    assert participant.get(f"/studies/{STUDY}/subjects").status_code == 403
    assert participant.get(f"/studies/{STUDY}").status_code == 403
    assert participant.get("/").headers["location"] == "/participant"
    assert participant.get(f"/participant/copies/{'0' * 64}").status_code == 404
    assert cora.get("/participant").status_code == 403


def test_an_expired_or_unknown_code_is_refused_and_writes_nothing(people: Platform, clock: FixedClock) -> None:
    subject = _screen(people, SITE_A)
    code = _invite(_client(people, "cora"), subject)
    visitor = _client(people)
    form = {"username": "pat-late", "password": PARTICIPANT_PASSWORD, "confirm": PARTICIPANT_PASSWORD}
    unknown = visitor.post("/participant/activate", data={**form, "code": "AAAA-BBBB-CCCC"})
    assert unknown.status_code == 422 and 'id="err-code"' in unknown.text and "not valid" in unknown.text
    clock.advance(timedelta(hours=73))
    expired = visitor.post("/participant/activate", data={**form, "code": code})
    assert expired.status_code == 422 and "expired" in expired.text
    assert _events(people, subject, "ParticipantActivated") == []
    assert visitor.get("/participant").headers["location"].startswith("/login")


def test_paper_consent_and_withdrawal_from_the_subject_page(people: Platform, clock: FixedClock) -> None:
    subject = _screen(people, SITE_A)
    cora = _client(people, "cora")
    base = f"/studies/{STUDY}/subjects/{subject}/consent"
    token = _csrf(cora, base)
    paper = {"csrf_token": token, "document_id": "ICF", "version": "1.0", "language": "en", "choices.BIOBANK": "yes"}
    future = cora.post(f"{base}/paper", data={**paper, "signed_on": "2026-02-01"})
    assert future.status_code == 422 and 'id="err-signed_on"' in future.text and "in the future" in future.text
    assert cora.post(f"{base}/paper", data={**paper, "signed_on": "2026-01-05"}).headers["location"] == (
        f"{base}?done=paper"
    )
    page = cora.get(f"{base}?done=paper")
    assert "Paper consent recorded." in page.text and "Version 1.0 on 2026-01-05, paper" in page.text

    withdraw = {"csrf_token": token, "document_id": "ICF", "withdrawn_on": "2026-01-05"}
    no_reason = cora.post(f"{base}/withdraw", data={**withdraw, "part": "", "reason": ""})
    assert no_reason.status_code == 422 and 'id="err-reason"' in no_reason.text
    part = cora.post(f"{base}/withdraw", data={**withdraw, "part": "BIOBANK", "reason": "changed her mind"})
    assert part.headers["location"] == f"{base}?done=withdrawn"
    whole = cora.post(
        f"{base}/withdraw",
        data={**withdraw, "part": "", "continues": "safety_follow_up", "reason": "moving abroad"},
    )
    assert whole.headers["location"] == f"{base}?done=withdrawn"
    with people.engine.connect() as connection:
        [row] = tracker_rows(connection, STUDY, None, subject)
    assert row["method"] == "paper" and row["withdrawn_on"] == "2026-01-05"
    assert row["continues"] == "safety_follow_up" and row["parts"] == "BIOBANK=withdrawn"
    assert "safety follow up" in cora.get(f"/studies/{STUDY}/consent").text


def _amend(platform: Platform) -> None:
    """Amendment 1: ICF version 2.0 (new risk information, from 2026-01-06), to be signed again by everyone."""
    definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
    document = definition.consent[0]
    first = document.versions[0]
    text = (REPO_ROOT / "studies" / "demo" / "consent" / "icf-2.0-en.md").read_text()
    second = ConsentVersion.model_validate(
        {
            "version": "2.0",
            "effective": "2026-01-06",
            "ethics_approval": "EC-2026-0106",
            "texts": [
                {"language": "en", "text": text, "questions": [q.model_dump() for q in first.texts[0].questions]}
            ],
            "optional_parts": [part.model_dump() for part in first.optional_parts],
            "reconsent": {},
        }
    )
    amended = definition.model_copy(
        update={
            "consent": (document.model_copy(update={"versions": (*document.versions, second)}),),
            "study": definition.study.model_copy(update={"protocol_version": "1.1"}),
        }
    )
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(amended), "yaml", "amended", reason="Amendment 1"))
        uow.commit()


def _sign(participant: Any, clock: FixedClock, sections: int, **extra: str) -> Any:
    _read_all(participant, clock, sections, seconds=3)
    token = _csrf(participant, "/participant/consent/ICF/questions")
    answers = {"answers.Q1": "No, neither will know", "answers.Q2": "Yes"}
    participant.post("/participant/consent/ICF/questions", data={"csrf_token": token, **answers})
    signing = {"choices.BIOBANK": "no", "printed_name": "Ann Example", "password": PARTICIPANT_PASSWORD, **extra}
    done = participant.post("/participant/consent/ICF/sign", data={"csrf_token": token, **signing})
    if not extra:
        assert done.headers["location"] == "/participant/consent/ICF/signed", done.text
    return done


def test_a_representative_signs_with_a_witness_and_both_are_on_the_copy(people: Platform, clock: FixedClock) -> None:
    subject = _screen(people, SITE_A)
    participant = _activate(people, _invite(_client(people, "cora"), subject))
    representative = {"signed_by": "legally_authorised_representative", "witness_name": "Wanda Witness"}
    refused = _sign(participant, clock, _section_count(people), **representative)
    assert refused.status_code == 422 and "relationship" in refused.text
    done = participant.post(
        "/participant/consent/ICF/sign",
        data={
            "csrf_token": _csrf(participant, "/participant/consent/ICF/sign"), "choices.BIOBANK": "no",
            "printed_name": "Rita Representative", "password": PARTICIPANT_PASSWORD,
            "representative_relationship": "daughter", **representative,
        },
    )  # fmt: skip
    assert done.headers["location"] == "/participant/consent/ICF/signed", done.text
    (signed,) = _events(people, subject, "ConsentSigned")
    assert signed["signed_by"] == "legally_authorised_representative"
    assert signed["representative_relationship"] == "daughter" and signed["witness_name_ref"]
    copy = participant.get(f"/participant/copies/{signed['copy_sha256']}").content
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(copy)).pages)
    assert "Rita Representative" in text and "Wanda Witness" in text and "daughter" in text


def test_an_amendment_asks_the_participant_to_sign_again(people: Platform, clock: FixedClock) -> None:
    subject = _screen(people, SITE_A)
    cora = _client(people, "cora")
    participant = _activate(people, _invite(cora, subject))
    _sign(participant, clock, _section_count(people))
    clock.advance(timedelta(days=2))
    _amend(people)
    cora, participant = _client(people, "cora"), _client(people, "pat-one", PARTICIPANT_PASSWORD)  # idle sessions ended

    home = participant.get("/participant")
    assert "There is new information in this version" in home.text and "Version 2.0" in home.text
    assert subject in cora.get(f"/studies/{STUDY}/consent?show=reconsent").text
    page = participant.get("/participant/consent/ICF/section/1")
    sections = int(re.search(r"Section 1 of (\d+)", page.text).group(1))  # type: ignore[union-attr]
    _sign(participant, clock, sections)
    versions = [signed["version"] for signed in _events(people, subject, "ConsentSigned")]
    assert versions == ["1.0", "2.0"]
    assert f'<tr data-subject="{subject}">' not in cora.get(f"/studies/{STUDY}/consent?show=reconsent").text
    assert "Nothing to sign right now." in participant.get("/participant").text


def test_consent_text_is_rendered_as_commonmark_without_raw_html() -> None:
    html = str(render_markdown("Take **one** tablet.\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>"))
    assert "<strong>one</strong>" in html
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html
