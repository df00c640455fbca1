"""Site staff in the browser: visits and forms with live edit checks, validation that saves nothing, the reason
for change, a session that expires mid-entry, and site scoping."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.web.conftest import Login

pytestmark = pytest.mark.browser
STUDY = "/studies/HTN-201"


def test_coordinator_enters_a_visit_and_sees_queries_open_and_close_inline(login: Login) -> None:
    page = login("coord.a")
    page.goto(f"{STUDY}/subjects/0101-003")
    page.get_by_role("link", name="Week 8", exact=True).click()
    expect(page.locator("#window-help")).to_contain_text("In window from 2026-03-17 to 2026-03-27")
    page.get_by_label("Visit date").fill("2026-03-20")
    page.get_by_role("button", name="Save visit date").click()
    expect(page.get_by_text("Visit date saved.")).to_be_visible()
    expect(page.locator('[data-check="WEEK8-WINDOW"]')).to_contain_text("passed")

    page.get_by_role("link", name="Vital Signs").click()
    page.get_by_label("Date of measurements").fill("2026-03-20")
    page.get_by_label("Systolic blood pressure").fill("120")
    page.get_by_label("Diastolic blood pressure").fill("125")
    page.get_by_label("Pulse rate").fill("70")
    page.get_by_label("Weight").fill("80.0")
    page.get_by_role("button", name="Save form").click()

    outcome = page.locator("#save-outcome")
    expect(outcome).to_contain_text("Saved.")
    expect(outcome.locator(".query-opened").first).to_contain_text(re.compile(r"Query Q-0101-003-\d+ opened on DIABP"))
    diastolic = page.locator("#item-DIABP")
    expect(diastolic.locator('[data-check="VS-DBP-LT-SBP"]')).to_contain_text("is not lower than systolic")
    expect(page.locator("#item-SYSBP .check-pass").first).to_be_visible()

    diastolic.get_by_label("Diastolic blood pressure").fill("80")
    page.get_by_role("button", name="Save form").click()
    expect(page.locator("#item-DIABP .field-error")).to_contain_text("reason for change")
    page.get_by_label("Reason for change applies").fill("Transcription error")
    page.get_by_role("button", name="Save form").click()
    expect(page.locator("#save-outcome .query-closed").first).to_contain_text("closed automatically")
    expect(page.locator('#item-DIABP [data-check="VS-DBP-LT-SBP"]')).to_contain_text("passed")


def test_invalid_or_blocked_values_are_shown_at_their_item_and_nothing_is_saved(login: Login) -> None:
    page = login("coord.a")
    page.goto(f"{STUDY}/subjects/0101-004/visits/WEEK8")
    page.get_by_label("Visit date").fill("2026-04-01")
    page.get_by_role("button", name="Save visit date").click()
    expect(page.get_by_text("Visit date saved.")).to_be_visible()

    page.goto(f"{STUDY}/subjects/0101-004/forms/WEEK8.VS")
    page.get_by_label("Systolic blood pressure").fill("130")
    page.get_by_label("Pulse rate").fill("seventy")
    page.get_by_role("button", name="Save form").click()
    pulse = page.locator("#item-PULSE")
    expect(pulse.locator(".field-error")).to_contain_text("'seventy' is not a whole number")
    expect(pulse.get_by_label("Pulse rate")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Systolic blood pressure")).to_have_value("130")

    page.get_by_label("Pulse rate").fill("72")
    page.get_by_label("Body temperature").fill("48.0")
    page.get_by_role("button", name="Save form").click()
    expect(page.locator("#item-TEMP .field-error")).to_contain_text("Temperature must be 34.0 to 42.0 C")

    page.reload()
    expect(page.get_by_label("Systolic blood pressure")).to_have_value("")
    expect(page.locator("h1 + .sub")).to_contain_text("Not started")


def test_an_expired_session_returns_to_sign_in_and_gives_back_what_was_typed(login: Login) -> None:
    page = login("coord.a")
    page.goto(f"{STUDY}/subjects/0101-003")
    page.get_by_role("link", name=re.compile(r"\+ Add record AE\.\d+")).click()
    page.get_by_label("Adverse event (reported term)").fill("Headache after dose")
    page.context.clear_cookies(name="trialstack_session")
    page.get_by_role("button", name="Save form").click()

    page.wait_for_url(re.compile(r"/login\?next="))
    expect(page.get_by_role("status")).to_contain_text("Your session has ended")
    page.get_by_label("Username").fill("coord.a")
    page.get_by_label("Password").fill("Sphygmo-manometer-7")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/forms/AE\.\d+$"))
    expect(page.get_by_text("What you typed is back in the form")).to_be_visible()
    expect(page.get_by_label("Adverse event (reported term)")).to_have_value("Headache after dose")


def test_a_site_a_user_cannot_open_a_site_b_subject(login: Login) -> None:
    page = login("coord.a")
    page.goto(f"{STUDY}/subjects")
    expect(page.get_by_role("link", name="0101-001")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("0102-"))).to_have_count(0)

    for path in ("/subjects/0102-002", "/subjects/0102-002/forms/SCREENING.VS", "/subjects/0102-002/audit"):
        answer = page.goto(STUDY + path)
        assert answer is not None and answer.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto(f"{STUDY}/queries?status=all")
    expect(page.get_by_text(re.compile("0102-00"))).to_have_count(0)
