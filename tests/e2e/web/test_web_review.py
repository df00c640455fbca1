"""Review in the browser: SDV and a manual query through its whole life, the investigator's signature, blinding,
and the study build page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.web.conftest import Login
from tests.e2e.web.support import ALLOCATED_SUBJECT, ARM_TEXT, REPO_ROOT

pytestmark = pytest.mark.browser
STUDY = "/studies/HTN-201"


def test_monitor_verifies_and_queries_coordinator_answers_data_manager_closes(login: Login) -> None:
    monitor = login("monitor")
    monitor.get_by_role("link", name="Source data verification").click()
    monitor.locator('a[href$="/subjects/0101-004/forms/WEEK4.VS/sdv"]').click()
    expect(monitor.locator("tr.sdv-target").first).to_be_visible()
    monitor.get_by_role("button", name="Verify ticked items").click()
    expect(monitor.get_by_text("Every targeted item of this form is verified.")).to_be_visible()

    monitor.get_by_label("Item").select_option("WEIGHT")
    monitor.get_by_label("Question to the site").fill("Weight differs from the source notes; please check.")
    monitor.get_by_role("button", name="Raise query").click()
    opened = monitor.locator("#open-query [role=status]")
    expect(opened).to_contain_text(re.compile(r"Query Q-0101-004-\d+ opened on WEIGHT"))
    query_id = re.search(r"Q-0101-004-\d+", opened.inner_text())
    assert query_id is not None

    coordinator = login("coord.a")
    coordinator.get_by_role("link", name="Queries", exact=True).click()
    card = coordinator.locator(f"article#{query_id.group(0)}")
    expect(card).to_contain_text("Weight differs from the source notes")
    card.get_by_label("Your answer").fill("Source notes were wrong; the CRF value is correct.")
    card.get_by_role("button", name="Send answer").click()
    card = coordinator.locator(f"article#{query_id.group(0)}")
    expect(card.get_by_role("status")).to_contain_text("Answer sent.")
    expect(card).to_contain_text("Answered")

    manager = login("datamanager")
    manager.goto(f"{STUDY}/queries")
    card = manager.locator(f"article#{query_id.group(0)}")
    expect(card).to_contain_text("Source notes were wrong")
    card.get_by_label("Close with resolution").fill("Answer accepted.")
    card.get_by_role("button", name="Close query").click()
    card = manager.locator(f"article#{query_id.group(0)}")
    expect(card.get_by_role("status")).to_contain_text("Query closed.")
    expect(card).to_contain_text("Resolution: Answer accepted.")


def test_investigator_signs_a_casebook_after_reauthentication(login: Login) -> None:
    page = login("inv.a")
    page.goto(f"{STUDY}/subjects/0101-001/sign")
    page.get_by_role("button", name="Sign casebook…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("#sign-meaning")).to_contain_text("accurate and complete")
    expect(dialog.locator("#sign-name")).to_contain_text("Inv.A Example")
    dialog.get_by_label("Your password").fill("not-my-password-1")
    dialog.get_by_label(re.compile("legally binding")).check()
    dialog.get_by_role("button", name="Sign", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("Not signed.")

    dialog.get_by_label("Your password").fill("Sphygmo-manometer-7")
    dialog.get_by_label(re.compile("legally binding")).check()
    dialog.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_url(re.compile(r"/sign\?signed=1"))
    block = page.locator("#signature")
    expect(block).to_contain_text("Signed")
    expect(block).to_contain_text("Inv.A Example")
    expect(block).to_contain_text("I have reviewed the data in this casebook")

    audit = login("inv.a")
    audit.goto(f"{STUDY}/subjects/0101-001/audit")
    expect(audit.locator('tr[data-event="CasebookSigned"]')).to_contain_text("user:inv.a")
    expect(audit.locator('tr[data-event="SignatureFailed"]')).to_have_count(0)


@pytest.mark.parametrize("username", ["coord.a", "monitor", "datamanager"])
def test_a_blinded_user_never_sees_an_allocation(login: Login, username: str) -> None:
    page = login(username)
    for path in ("", "/audit"):
        page.goto(f"{STUDY}/subjects/{ALLOCATED_SUBJECT}{path}")
        expect(page.locator("main")).not_to_contain_text(ARM_TEXT)
        expect(page.locator("main")).not_to_contain_text("Allocated")
    expect(page.locator('tr[data-event="ItemValueEntered"]').first).to_be_visible()


def test_study_builder_checks_a_file_and_publishes_an_amendment(login: Login, tmp_path: Path) -> None:
    source = (REPO_ROOT / "studies" / "demo" / "study.yaml").read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(source.replace("expression: ICDAT <= VISIT_DATE", "expression: ICDAT <= NO_SUCH_ITEM", 1))
    amended = tmp_path / "amendment-1.yaml"
    amended.write_text(
        source.replace('protocol_version: "1.0"', 'protocol_version: "1.1"', 1).replace(
            "label: Pulse rate, seated", "label: Pulse rate, seated (beats per minute)", 1
        )
    )
    page = login("builder")
    page.get_by_role("navigation", name="Study").get_by_role("link", name="Study build").click()
    page.get_by_label("Study definition").set_input_files(broken)
    page.get_by_role("button", name="Check").click()
    expect(page.locator(".problems li").first).to_contain_text(re.compile(r"broken\.yaml:\d+:\d+"))
    expect(page.locator(".problems")).to_contain_text("NO_SUCH_ITEM")
    expect(page.get_by_role("button", name="Publish this version")).to_have_count(0)

    page.get_by_label("Study definition").set_input_files(amended)
    texts = sorted((REPO_ROOT / "studies" / "demo" / "consent").glob("icf-1.0-*.md"))
    page.get_by_label("Consent texts").set_input_files(texts)
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#version-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(page.locator(".diff")).to_contain_text("VS.PULSE")
    page.get_by_label("Reason for the amendment").fill("Protocol amendment 1: clearer pulse label")
    page.get_by_role("button", name="Publish this version").click()
    expect(page.get_by_role("status")).to_contain_text("Published StudyVersion")
    expect(page.locator("aside")).to_contain_text("Protocol 1.1")
