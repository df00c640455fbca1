"""eConsent in the browser: a coordinator invites a newly screened subject; the participant activates the account on
a phone (390×844), reads every section, is sent back by a wrong answer, signs, and downloads the signed copy, whose
SHA-256 is the one in the ledger; the coordinator countersigns and the participant's new copy matches that event."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect
from sqlalchemy import create_engine

from tests.e2e.web.support import ALLOCATED_SUBJECT, PASSWORD, REPO_ROOT, STUDY
from trialstack.consent.handlers import CONSENT, stream_id
from trialstack.ledger import store

pytestmark = pytest.mark.browser
PHONE: ViewportSize = {"width": 390, "height": 844}
PARTICIPANT_PASSWORD = "Correct-Horse-9-battery"
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
Login = Callable[..., Page]


def _ledger(database_url: str, subject: str, kind: str) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [
                e.payload
                for e in store.read_stream(connection, CONSENT, stream_id(STUDY, subject))
                if e.event_type == kind
            ]
    finally:
        engine.dispose()


def _fits_the_phone(page: Page) -> None:
    """No horizontal scroll, readable text, and every button a finger can hit."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 17
    for box in [b.bounding_box() for b in page.locator("main button, main .p-btn, main .p-choice").all()]:
        assert box is not None and box["height"] >= 44, (page.url, box)


def _download(page: Page, link: Locator) -> bytes:
    with page.expect_download() as info:
        link.click()
    path = info.value.path()
    with open(path, "rb") as file:
        return file.read()


@pytest.fixture
def phone(browser: Browser, server: str, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=server, viewport=PHONE, has_touch=True, accept_downloads=True)
    context.set_default_timeout(10_000)
    failed_before = request.session.testsfailed
    try:
        yield context
    finally:
        if request.session.testsfailed > failed_before:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            for index, opened in enumerate(context.pages):
                opened.screenshot(path=SCREENSHOTS / f"{request.node.name}-phone-{index}.png", full_page=True)
        context.close()


def test_a_participant_consents_on_a_phone_and_the_coordinator_countersigns(
    login: Login, phone: BrowserContext, web_database: str
) -> None:
    coordinator = login("coord.a")
    coordinator.goto(f"/studies/{STUDY}/subjects")
    coordinator.get_by_role("button", name="Screen subject").click()
    coordinator.wait_for_url(re.compile(r"/subjects/0101-\d+\?screened=1"))
    subject = re.search(r"/subjects/(0101-\d+)", coordinator.url).group(1)  # type: ignore[union-attr]
    coordinator.locator(".page-head .actions").get_by_role("link", name="Consent").click()
    coordinator.get_by_role("button", name="Invite to the participant app").click()
    expect(coordinator.locator("#invitation-code")).to_contain_text("shown only this once")
    code = coordinator.locator("#the-code").inner_text().strip()

    page = phone.new_page()
    page.goto("/participant/activate")
    _fits_the_phone(page)
    page.get_by_label("Your code").fill(code)
    page.get_by_label("Choose a username").fill(f"pat-{subject}")
    page.get_by_label("Choose a password").fill(PARTICIPANT_PASSWORD)
    page.get_by_label("Type the password again").fill(PARTICIPANT_PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url("**/participant?welcome=1")
    expect(page.get_by_role("status")).to_contain_text("Your account is ready")
    assert page.locator("nav.tabs").count() == 0  # no staff navigation
    _fits_the_phone(page)

    page.get_by_role("link", name="Read and sign").click()
    total = int(re.search(r"of (\d+)", page.locator(".p-progress").inner_text()).group(1))  # type: ignore[union-attr]
    for number in range(1, total + 1):
        expect(page.locator(".p-progress")).to_have_text(f"Section {number} of {total}")
        _fits_the_phone(page)
        page.get_by_role("button", name="Go to the questions" if number == total else "Next").click()
    page.wait_for_url("**/questions")
    _fits_the_phone(page)
    q1 = page.get_by_role("group", name=re.compile("or placebo"))
    q1.get_by_label("Yes, both will know").check()
    page.get_by_role("group", name=re.compile("stop taking part")).get_by_label("Yes", exact=True).check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/sign")
    _fits_the_phone(page)
    page.get_by_role("group", name=re.compile("Optional")).get_by_label("Yes", exact=True).check()
    page.get_by_label("Your full name").fill("Jürgen Müller")
    page.get_by_label("Your password").fill(PARTICIPANT_PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()

    page.wait_for_url("**/section/3")  # the wrong answer sends the participant back to the section
    expect(page.get_by_role("alert")).to_contain_text("read section 3 again")
    _fits_the_phone(page)
    page.get_by_role("button", name="Back to the questions").click()
    page.wait_for_url("**/questions")
    page.get_by_role("group", name=re.compile("or placebo")).get_by_label("No, neither will know").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/sign")
    expect(page.get_by_role("group", name=re.compile("Optional")).get_by_label("Yes", exact=True)).to_be_checked()
    page.get_by_label("Your full name").fill("Jürgen Müller")
    page.get_by_label("Your password").fill(PARTICIPANT_PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_url("**/signed")
    _fits_the_phone(page)

    [signed] = _ledger(web_database, subject, "ConsentSigned")
    assert {a["question"]: a["attempts"] for a in signed["answers"]}["Q1"] == 2
    pdf = _download(page, page.get_by_role("link", name="Download your signed copy (PDF)"))
    assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == signed["copy_sha256"]

    assert page.goto(f"/studies/{STUDY}/subjects/{ALLOCATED_SUBJECT}/consent").status == 404  # type: ignore[union-attr]
    assert page.goto(f"/studies/{STUDY}/subjects").status == 403  # type: ignore[union-attr]

    coordinator.goto(f"/studies/{STUDY}/consent?show=countersign")
    coordinator.get_by_role("link", name=subject).click()
    coordinator.get_by_label("Your password").fill(PASSWORD)
    coordinator.get_by_role("button", name="Countersign").click()
    expect(coordinator.get_by_role("status")).to_contain_text("Countersigned")
    [countersigned] = _ledger(web_database, subject, "ConsentCountersigned")

    page.goto("/participant")
    expect(page.get_by_text("Signed by you and the study team")).to_be_visible()
    copy = _download(page, page.locator(f'a[href="/participant/copies/{countersigned["copy_sha256"]}"]'))
    assert hashlib.sha256(copy).hexdigest() == countersigned["copy_sha256"] != signed["copy_sha256"]
    _fits_the_phone(page)
