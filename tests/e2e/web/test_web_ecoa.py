"""eCOA in the browser, on a phone (390×844) at 18:30 in Chicago on the first day of the diary: the participant
completes today's diary online; with the network gone completes the GAD-7, which is kept on the phone as queued;
back online it is sent, and the page and the API show the phone's completion time beside the server's receipt
time. The site's page charts the scores, and after a sweep the study home lists the missed diary entries.

The server runs in its own process on a fixed clock (`python -m tests.e2e.web.test_web_ecoa serve`), the browser's
clock is set to the same moment, so the diary window is open whatever the time of day the suite runs."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.web.conftest import _free_port, _wait_until_up
from tests.e2e.web.support import PASSWORD, REPO_ROOT, STUDY
from trialstack.bootstrap import bootstrap
from trialstack.capture import commands as capture_cmd
from trialstack.capture import handlers as capture
from trialstack.capture.refs import VisitKey
from trialstack.clock import FixedClock
from trialstack.consent import commands as consent_cmd
from trialstack.consent import handlers as consent
from trialstack.ecoa import handlers as ecoa
from trialstack.identity import commands as identity_cmd
from trialstack.identity import handlers as identity
from trialstack.identity.crypto import Passwords, use_passwords
from trialstack.identity.policy import Role
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
NOW = datetime(2026, 1, 6, 0, 30, tzinfo=UTC)  # 18:30 on Monday 5 January in Chicago (site 0101)
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
ADMIN = Actor("os:web-e2e", "admin")
STAFF = Actor("user:coord.a", "study_coordinator")
PARTICIPANT = "pat.ecoa"


def seed(database_url: str) -> str:
    """The demo study, a coordinator and an investigator at 0101, and a consented subject with DAY1 today whose
    participant account is PARTICIPANT; returns the subject id."""
    previous = use_passwords(Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)))
    platform = bootstrap(database_url=database_url, migrate=True, clock=FixedClock(NOW))
    try:
        definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
        with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
            publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", "study.yaml"))
            uow.commit()
        with platform.unit_of_work(ADMIN) as uow:
            for username, role in (("coord.a", Role.STUDY_COORDINATOR), ("inv.a", Role.INVESTIGATOR)):
                identity.register_user(uow, identity_cmd.RegisterUser(username, username.title(), PASSWORD))
                identity.grant_role(uow, identity_cmd.GrantRole(username, STUDY, role, frozenset({"0101"})))
            uow.commit()
        with platform.unit_of_work(STAFF) as uow:
            subject = capture.screen_subject(uow, STUDY, capture_cmd.ScreenSubject("0101", "2026-01-05")).subject_id
            uow.commit()
        assert subject is not None
        with platform.unit_of_work(STAFF) as uow:
            paper = consent_cmd.RecordPaperConsent(subject, "ICF", "1.0", "2026-01-05", choices={"BIOBANK": False})
            consent.record_paper_consent(uow, STUDY, "0101", ("coord.a", "Coord A"), paper)
            uow.commit()
        for visit in ("SCREENING", "DAY1"):
            with platform.unit_of_work(STAFF) as uow:
                capture.record_visit_date(
                    uow, STUDY, capture_cmd.RecordVisitDate(subject, VisitKey(visit), "2026-01-05")
                )
                uow.commit()
        with platform.unit_of_work(ADMIN) as uow:
            identity.open_participant_account(
                uow, identity_cmd.OpenParticipantAccount(PARTICIPANT, PASSWORD, STUDY, "0101", subject)
            )
            uow.commit()
        return subject
    finally:
        platform.close()
        use_passwords(previous)


def serve(database_url: str, port: int, at: str) -> None:
    import uvicorn

    from trialstack.api.app import create_app

    platform = bootstrap(database_url=database_url, migrate=True, clock=FixedClock(datetime.fromisoformat(at)))
    uvicorn.run(create_app(platform), host="127.0.0.1", port=port, log_level="warning")


@pytest.fixture(scope="module")
def ecoa_server(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(base URL, database URL, subject) of a server on the fixed clock NOW."""
    folder = tmp_path_factory.mktemp("ecoa-web")
    database_url = f"sqlite:///{folder / 'ecoa.db'}"
    subject = seed(database_url)
    port, log = _free_port(), folder / "server.log"
    environment = {**os.environ, "TRIALSTACK_ECOA_SWEEP_MINUTES": "0"}
    command = [sys.executable, "-m", "tests.e2e.web.test_web_ecoa", "serve", "--db", database_url,
               "--port", str(port), "--at", NOW.isoformat()]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield url, database_url, subject
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _context(browser: Browser, url: str, **options: Any) -> BrowserContext:
    context = browser.new_context(base_url=url, timezone_id="America/Chicago", **options)
    context.set_default_timeout(10_000)
    context.clock.set_fixed_time(NOW)
    return context


@pytest.fixture
def contexts(browser: Browser, request: pytest.FixtureRequest) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    failed_before = request.session.testsfailed
    yield opened
    if request.session.testsfailed > failed_before:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for index, page in enumerate(p for c in opened for p in c.pages):
            page.screenshot(path=SCREENSHOTS / f"{request.node.name}-{index}.png", full_page=True)
    for context in opened:
        context.close()


def _sign_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def _fits_the_phone(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url
    for box in [b.bounding_box() for b in page.locator("main button:visible, main .p-btn:visible").all()]:
        assert box is not None and box["height"] >= 44, (page.url, box)


def _next(page: Page) -> None:
    page.get_by_role("button", name="Next").click()


def test_a_participant_completes_the_diary_online_and_the_gad7_offline(
    browser: Browser, ecoa_server: tuple[str, str, str], contexts: list[BrowserContext]
) -> None:
    url, database_url, subject = ecoa_server
    phone = _context(browser, url, viewport=PHONE, has_touch=True)
    contexts.append(phone)
    page = phone.new_page()
    _sign_in(page, PARTICIPANT)
    page.wait_for_url("**/participant")
    today = page.locator("section", has=page.get_by_role("heading", name="Questionnaires today"))
    expect(today).to_contain_text("Daily symptom diary")
    _fits_the_phone(page)
    today.get_by_role("link", name="Answer now").click()
    page.wait_for_url("**/participant/questionnaires")
    page.get_by_role("link", name="Start Daily symptom diary").click()

    expect(page.locator(".p-progress")).to_have_text("Question 1 of 7")
    _fits_the_phone(page)
    page.get_by_label("Yes").check()
    _next(page)
    page.get_by_label("Time").fill("08:10")
    _next(page)
    expect(page.locator(".p-progress")).to_have_text("Question 3 of 7")
    page.locator("label.ecoa-scale-point", has_text="2").click()
    _fits_the_phone(page)
    _next(page)
    page.locator("label.ecoa-scale-point", has_text="3").click()
    _next(page)
    page.get_by_label("None").check()
    _next(page)
    page.get_by_label(re.compile("A number from 0")).fill("70")
    _next(page)
    _next(page)  # the notes are optional
    expect(page.get_by_role("heading", name="Check your answers")).to_be_visible()
    _fits_the_phone(page)
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_url("**/participant/questionnaires?done=DIARY:2026-01-05")
    done = page.locator("section", has=page.get_by_role("heading", name="Done"))
    expect(done).to_contain_text("Completed on your phone at 2026-01-05 18:30 (UTC-06:00)")
    expect(done).to_contain_text("received at 2026-01-06 00:30 (UTC)")
    scope = page.evaluate("navigator.serviceWorker.ready.then(function (r) { return r.scope; })")
    assert scope == f"{url}/participant/"  # installable: manifest and a service worker for the participant app

    phone.set_offline(True)
    expect(page.get_by_text("You are offline")).to_be_visible()
    page.get_by_role("link", name=re.compile("Start Generalized Anxiety")).click()
    for number in range(1, 8):
        expect(page.locator(".p-progress")).to_have_text(f"Question {number} of 7")
        page.get_by_label("Several days").check()
        _next(page)
    _fits_the_phone(page)
    page.get_by_role("button", name="Keep my answers on this phone").click()
    queued = page.locator('[data-queued="GAD7/DAY1"]')
    expect(queued).to_contain_text("Queued: will be sent when you are online")
    expect(queued).to_contain_text("Completed on this phone at 2026-01-05 18:30-06:00")
    _fits_the_phone(page)

    phone.set_offline(False)
    expect(queued).to_have_attribute("data-state", "sent")
    expect(queued).to_contain_text("received at 2026-01-06 00:30 UTC")
    answer = page.request.get(f"/api/v1/studies/{STUDY}/subjects/{subject}/questionnaires")
    assert answer.status == 200, answer.text()
    gad7 = next(e for e in answer.json()["entries"] if e["instrument"] == "GAD7" and e["entry"] == "DAY1")
    assert (gad7["status"], gad7["completed_at"], gad7["received_at"], gad7["mode"], gad7["scores"]) == (
        "completed", "2026-01-05T18:30:00-06:00", "2026-01-06T00:30:00.000000Z", "participant", {"TOTAL": "7"},
    )  # fmt: skip
    page.reload()
    expect(page.locator("section", has=page.get_by_role("heading", name="Done"))).to_contain_text("GAD-7")

    desk = _context(browser, url, viewport={"width": 1280, "height": 900})
    contexts.append(desk)
    staff = desk.new_page()
    _sign_in(staff, "coord.a")
    staff.goto(f"/studies/{STUDY}/subjects/{subject}/questionnaires")
    row = staff.locator("tr", has_text="GAD-7")
    expect(row.first).to_contain_text("2026-01-05 18:30 (UTC-06:00)")
    expect(row.first).to_contain_text("2026-01-06 00:30 (UTC)")
    expect(staff.locator("canvas[data-drawn=true]")).to_have_count(2)  # GAD-7 total, diary symptoms (no PHQ-9 yet)

    platform = bootstrap(database_url=database_url, clock=FixedClock(datetime(2026, 1, 9, 12, 0, tzinfo=UTC)))
    try:
        assert ecoa.sweep_study(platform.engine, platform.unit_of_work, STUDY) > 0
    finally:
        platform.close()
    staff.goto(f"/studies/{STUDY}")
    alerts = staff.locator("section", has=staff.get_by_role("heading", name=re.compile("eCOA alerts")))
    expect(alerts).to_contain_text(f"{subject} · Missed entry")
    alerts.get_by_role("link", name=re.compile("Missed entry")).first.click()
    expect(staff.get_by_role("heading", name="Questionnaires")).to_be_visible()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--at", required=True)
    arguments = parser.parse_args()
    serve(arguments.db, arguments.port, arguments.at)
