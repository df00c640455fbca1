"""Randomization and drug supply in the browser, on a server with a fixed clock (20 January 2026, Day 1 of the
subjects of tests/e2e/web/irt_support.py):

- the coordinator randomizes from the casebook (the dialog shows the stratum and the SBP that decides it) and
  dispenses the Day 1 kit: the page shows kit numbers, never an arm;
- the investigator breaks the blind: a wrong password is refused and unblinds nothing; then the treatment is shown
  once, and the casebook says "Unblinded on … by investigator" without it, to everyone;
- the site receives a shipment with a temperature excursion (its kits go to quarantine) and the pharmacist, who
  sees the inventory with treatments, releases them;
- no page a blinded user can open holds an arm id, an arm name or a kit's treatment (not even hidden), and every
  IRT page and post answers each role exactly as PERMISSIONS says.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import create_engine
from starlette.routing import BaseRoute

from tests.e2e.web.conftest import _free_port, _wait_until_up
from tests.e2e.web.irt_support import ARMS, NOW, SITE, World, matrix_user, seed
from tests.e2e.web.support import PASSWORD, REPO_ROOT, STUDY
from trialstack.identity.policy import PERMISSIONS, Action, Role
from trialstack.irt.handlers import IRT, randomization_stream
from trialstack.irt.readmodel import subject_row
from trialstack.ledger import store
from trialstack.web import routes_irt, routes_pharmacy

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
BASE = f"/studies/{STUDY}"
REVEALING = re.compile(r"\b(?:ZEL|PBO)\b|" + "|".join(re.escape(name) for name in ARMS.values()) + "|(?i:zelvoprin)")
"""What a blinded page must never hold: the arm ids and names (zelvoprin is only ever named as a treatment)."""


@pytest.fixture(scope="module")
def irt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, World]]:
    """(base URL, database URL, world) of a server on the fixed clock NOW."""
    folder = tmp_path_factory.mktemp("irt-web")
    database_url = f"sqlite:///{folder / 'irt.db'}"
    world = seed(database_url)
    port, log = _free_port(), folder / "server.log"
    command = [sys.executable, "-m", "tests.e2e.web.irt_support", "serve", "--db", database_url, "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield url, database_url, world
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def desk(browser: Browser, irt_server: tuple[str, str, World], request: pytest.FixtureRequest) -> Iterator[Any]:
    """`desk("coord.a")`: a page of a fresh browser context signed in as that user."""
    url = irt_server[0]
    contexts: list[BrowserContext] = []
    failed_before = request.session.testsfailed

    def sign_in(username: str) -> Page:
        context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        context.clock.set_fixed_time(NOW)
        contexts.append(context)
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda u: "/login" not in u)
        return page

    yield sign_in
    if request.session.testsfailed > failed_before:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for index, page in enumerate(p for c in contexts for p in c.pages):
            page.screenshot(path=SCREENSHOTS / f"{request.node.name}-{index}.png", full_page=True)
    for context in contexts:
        context.close()


def _blinded(html: str, where: str) -> None:
    found = REVEALING.search(html)
    assert found is None, (
        f"{where} reveals {found.group(0)!r}: …{html[max(0, found.start() - 120) : found.end() + 40]}…"
    )


def _events(database_url: str, kind: str) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            stream = store.read_stream(connection, IRT, randomization_stream(STUDY))
            return [e.payload for e in stream if e.event_type == kind]
    finally:
        engine.dispose()


def _allocated_arm(database_url: str, subject: str) -> str:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = subject_row(connection, STUDY, subject, unblinded=True)
    finally:
        engine.dispose()
    assert row is not None and row["arm"] in ARMS
    return str(row["arm"])


# --- in the browser -----------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_coordinator_randomizes_and_dispenses_and_the_investigator_breaks_the_blind(
    desk: Any, irt_server: tuple[str, str, World]
) -> None:
    _, database_url, world = irt_server
    subject = world.waiting
    casebook = f"{BASE}/subjects/{subject}"
    coordinator: Page = desk("coord.a")
    coordinator.goto(casebook)
    panel = coordinator.locator("#irt-panel")
    expect(panel).to_contain_text("Enrolled, not randomized yet")
    panel.get_by_role("button", name="Randomize…").click()
    dialog = coordinator.get_by_role("dialog", name=f"Randomize subject {subject}")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#randomize-stratum")).to_have_text(f"{SITE}/GE160")
    expect(dialog).to_contain_text("Systolic blood pressure, seated")
    expect(dialog.locator("#randomize-values")).to_contain_text("165 mmHg")
    dialog.get_by_role("button", name="Confirm randomization").click()

    expect(panel.get_by_role("status")).to_contain_text("randomization number 1002, stratum 0101/GE160")
    expect(panel.locator("#irt-number")).to_have_text("1002")
    expect(panel.locator("#irt-stratum")).to_have_text("0101/GE160")
    expect(panel.locator("#irt-date")).to_have_text("2026-01-20")
    [allocated] = [p for p in _events(database_url, "SubjectRandomized") if p["subject_id"] == subject]
    assert allocated["values"] == {"DAY1.VS.SYSBP": "165"}

    day1 = panel.locator("tr[data-visit=DAY1]")
    day1.get_by_role("button", name="Dispense kit").click()
    expect(panel.get_by_role("status")).to_contain_text("dispensed at Day 1 / Randomization")
    kit = re.search(r"Kit (\d+)", panel.get_by_role("status").inner_text()).group(1)  # type: ignore[union-attr]
    expect(day1).to_contain_text(f"Kit {kit}")
    expect(panel.locator("tr[data-visit=WEEK4]").get_by_role("button", name="Dispense kit")).to_be_visible()
    _blinded(coordinator.content(), "the coordinator's casebook")
    fragment = coordinator.request.get(f"{casebook}/irt", headers={"HX-Request": "true"})
    assert fragment.status == 200 and f"Kit {kit}" in fragment.text()
    _blinded(fragment.text(), "the IRT panel")
    assert panel.get_by_role("link", name=re.compile("Emergency unblinding")).count() == 0  # coordinators may not

    investigator: Page = desk("inv.a")
    investigator.goto(casebook)
    investigator.locator("#irt-panel").get_by_role("link", name=re.compile("Emergency unblinding")).click()
    investigator.wait_for_url(f"**{casebook}/unblind")
    _blinded(investigator.content(), "the unblinding form")
    reason = "Severe hypotension at the emergency department; the treating physician needs the treatment."
    investigator.get_by_label("Medical reason").fill(reason)
    investigator.get_by_label("Your password").fill("not-my-password-1")
    investigator.get_by_role("button", name=f"Unblind subject {subject}").click()
    expect(investigator.get_by_role("alert").first).to_contain_text("Not unblinded")
    expect(investigator.get_by_label("Your password")).to_have_attribute("aria-invalid", "true")
    _blinded(investigator.content(), "the refused unblinding")
    assert [p for p in _events(database_url, "EmergencyUnblinded") if p["subject_id"] == subject] == []

    expect(investigator.get_by_label("Medical reason")).to_have_value(reason)
    investigator.get_by_label("Your password").fill(PASSWORD)
    investigator.get_by_role("button", name=f"Unblind subject {subject}").click()
    shown = investigator.locator("#unblinded-treatment")
    expect(shown).to_contain_text(f"Treatment: {ARMS[_allocated_arm(database_url, subject)]}")
    expect(shown).to_contain_text("Shown this once")
    [unblinding] = [p for p in _events(database_url, "EmergencyUnblinded") if p["subject_id"] == subject]
    assert (unblinding["username"], unblinding["role"], unblinding["reason"]) == ("inv.a", "investigator", reason)
    assert not REVEALING.search(str(unblinding))

    shown.get_by_role("link", name="Back to the casebook").click()
    expect(investigator.locator("#irt-unblinded")).to_have_text(re.compile(r"Unblinded on 2026-01-20 by investigator"))
    _blinded(investigator.content(), "the investigator's casebook after unblinding")
    coordinator.reload()
    expect(coordinator.locator("#irt-unblinded")).to_contain_text("Unblinded on 2026-01-20 by investigator")
    _blinded(coordinator.content(), "the coordinator's casebook after unblinding")


@pytest.mark.browser
def test_a_shipment_with_an_excursion_is_quarantined_and_the_pharmacist_releases_it(
    desk: Any, irt_server: tuple[str, str, World]
) -> None:
    shipment = irt_server[2].shipment
    coordinator: Page = desk("coord.a")
    coordinator.goto(BASE)
    coordinator.get_by_role("navigation", name="Study").get_by_role("link", name="Drug supply").click()
    expect(coordinator.locator(f"tr[data-shipment={shipment}]")).to_contain_text("Dispatched")
    receipt = coordinator.locator(f"#receive-{shipment}")
    boxes = receipt.get_by_role("checkbox", name=re.compile(r"^Kit \d+$"))
    expect(boxes).to_have_count(2)
    kits = [re.sub(r"\D", "", boxes.nth(n).get_attribute("value") or "") for n in range(2)]
    for n in range(2):
        expect(boxes.nth(n)).to_be_checked()
    _blinded(coordinator.content(), "the site's supply page")
    receipt.get_by_label(re.compile("temperature logger shows an excursion")).check()
    receipt.get_by_label("Note").fill("Logger: 11.2 °C for 3 h 40 min")
    receipt.get_by_role("button", name="Receive").click()
    expect(coordinator.get_by_role("status")).to_contain_text("in quarantine")
    expect(coordinator.locator(f"tr[data-shipment={shipment}]")).to_contain_text("Temperature excursion")
    expect(coordinator.locator(f"#quarantined-{SITE}")).to_have_text(", ".join(kits))
    _blinded(coordinator.content(), "the site's supply page after receipt")

    pharmacist: Page = desk("pharmacist")
    pharmacist.goto(BASE)
    pharmacist.get_by_role("navigation", name="Study").get_by_role("link", name="Pharmacy").click()
    pharmacist.get_by_role("navigation", name="Pharmacy").get_by_role("link", name="Shipments").click()
    quarantine = pharmacist.locator("#quarantined-kits")
    for kit in kits:
        expect(quarantine.locator(f"tr[data-kit='{kit}']")).to_contain_text(re.compile("ZEL|PBO"))
    pharmacist.get_by_label(re.compile("^Reason")).fill("Excursion within the stability data (25 °C for 72 h)")
    pharmacist.get_by_role("button", name="Release as usable").click()
    expect(pharmacist.get_by_role("status")).to_contain_text("released from quarantine")
    expect(pharmacist.locator("#h-quarantine")).to_have_text("Quarantine (0)")

    coordinator.reload()
    available = coordinator.locator(f"#available-{SITE}")
    for kit in kits:
        expect(available).to_contain_text(kit)
    expect(coordinator.locator(f"#quarantined-{SITE}")).to_have_count(0)


@pytest.mark.browser
def test_the_pharmacist_sees_the_inventory_with_treatments_lots_and_expiry(
    desk: Any, irt_server: tuple[str, str, World]
) -> None:
    world = irt_server[2]
    pharmacist: Page = desk("pharmacist")
    pharmacist.goto(f"{BASE}/pharmacy")
    summary = pharmacist.locator("#inventory-summary")
    for arm, name in ARMS.items():
        expect(summary.get_by_role("columnheader", name=re.compile(arm))).to_contain_text(name)
    expect(summary).to_contain_text("DEPOT_US")
    pharmacist.get_by_label("Location", exact=True).select_option(SITE)
    pharmacist.get_by_label("Status", exact=True).select_option("dispensed")
    pharmacist.get_by_role("button", name="Show").click()
    dispensed = pharmacist.locator("#inventory-kits tbody tr", has_text=world.randomized)
    expect(dispensed.first).to_contain_text("LOT-A01")
    expect(dispensed.first).to_contain_text("2027-06-30")
    expect(dispensed.first).to_contain_text(re.compile("|".join(ARMS.values())))
    pharmacist.get_by_role("link", name="Randomizations").click()
    expect(pharmacist.locator(f"#randomizations tr[data-subject='{world.randomized}']")).to_contain_text(
        re.compile(r"1001.*(ZEL|PBO)", re.S)
    )
    pharmacist.get_by_role("link", name="Drug accountability").click()
    expect(pharmacist.locator(f"#accountability tr[data-subject='{world.randomized}']").first).to_contain_text("DAY1")


# --- over HTTP ----------------------------------------------------------------------------------------------------


@contextmanager
def _client(url: str, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, follow_redirects=False, timeout=10) as client:
        answer = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
        assert answer.status_code == 303, (username, answer.status_code, answer.text[:300])
        yield client


def _csrf(client: httpx.Client) -> str:
    match = re.search(r'name="csrf-token" content="([0-9a-f]*)"', client.get("/", follow_redirects=True).text)
    assert match is not None
    return match.group(1)


def test_pages_of_blinded_users_hold_no_arm_while_the_pharmacist_sees_them(
    irt_server: tuple[str, str, World],
) -> None:
    url, _, world = irt_server
    subject = f"{BASE}/subjects/{world.randomized}"
    blinded = {
        "coord.a": [subject, f"{subject}/irt", f"{BASE}/supply"],
        "inv.a": [subject, f"{subject}/irt", f"{subject}/unblind", f"{BASE}/supply"],
        matrix_user(Role.MONITOR): [subject, f"{subject}/irt", f"{subject}/audit"],
        matrix_user(Role.DATA_MANAGER): [subject, f"{subject}/irt"],
        matrix_user(Role.SPONSOR_VIEWER): [subject, f"{subject}/irt"],
    }
    for username, paths in blinded.items():
        with _client(url, username) as client:
            for path in paths:
                for headers in ({}, {"HX-Request": "true"}):
                    answer = client.get(path, headers=headers)
                    assert answer.status_code == 200, (username, path, answer.status_code)
                    _blinded(answer.text, f"{path} as {username}")
            assert "1001" in client.get(f"{subject}/irt").text  # the randomization number is not blinded
    with _client(url, "pharmacist") as client:
        for path in (f"{BASE}/pharmacy", f"{BASE}/pharmacy/randomizations", f"{BASE}/pharmacy/accountability"):
            answer = client.get(path)
            assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
            assert REVEALING.search(answer.text), f"{path} shows the pharmacist no treatment"
        inventory = client.get(f"{BASE}/pharmacy").text
        assert all(arm in inventory and name in inventory for arm, name in ARMS.items())
        assert "LOT-A01" in inventory and "2027-06-30" in inventory


ROUTES: dict[tuple[str, str], Action] = {
    ("GET", "/studies/{study_id}/subjects/{subject_id}/irt"): Action.SUBJECT_READ,
    ("POST", "/studies/{study_id}/subjects/{subject_id}/irt/randomize"): Action.SUBJECT_RANDOMIZE,
    ("POST", "/studies/{study_id}/subjects/{subject_id}/irt/dispense"): Action.KIT_DISPENSE,
    ("POST", "/studies/{study_id}/subjects/{subject_id}/irt/return"): Action.KIT_DISPENSE,
    ("GET", "/studies/{study_id}/subjects/{subject_id}/unblind"): Action.SUBJECT_UNBLIND,
    ("POST", "/studies/{study_id}/subjects/{subject_id}/unblind"): Action.SUBJECT_UNBLIND,
    ("GET", "/studies/{study_id}/supply"): Action.SUPPLY_RECEIVE,
    ("POST", "/studies/{study_id}/supply/shipments/{shipment_id}/receive"): Action.SUPPLY_RECEIVE,
    ("GET", "/studies/{study_id}/pharmacy"): Action.ALLOCATION_READ,
    ("GET", "/studies/{study_id}/pharmacy/shipments"): Action.ALLOCATION_READ,
    ("GET", "/studies/{study_id}/pharmacy/accountability"): Action.ALLOCATION_READ,
    ("GET", "/studies/{study_id}/pharmacy/randomizations"): Action.ALLOCATION_READ,
    ("GET", "/studies/{study_id}/pharmacy/unblindings"): Action.ALLOCATION_READ,
    ("POST", "/studies/{study_id}/pharmacy/shipments"): Action.SUPPLY_MANAGE,
    ("POST", "/studies/{study_id}/pharmacy/shipments/{shipment_id}/dispatch"): Action.SUPPLY_MANAGE,
    ("POST", "/studies/{study_id}/pharmacy/quarantine"): Action.SUPPLY_MANAGE,
    ("POST", "/studies/{study_id}/pharmacy/resupply"): Action.SUPPLY_MANAGE,
}
"""Every IRT page and post, and the action it needs (at the subject's or shipment's site)."""
HARMLESS = {"site_id": "X-404", "visit": "", "kit": "", "decision": ""}
"""What the matrix posts: refused by validation after authorization, so an allowed role changes nothing."""


def _declared(routes: list[BaseRoute]) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_irt_route_answers_each_role_as_permissions_say(irt_server: tuple[str, str, World]) -> None:
    url, _, world = irt_server
    assert _declared(routes_irt.router.routes + routes_pharmacy.router.routes) == set(ROUTES), "list new routes here"
    values = {"study_id": STUDY, "subject_id": world.randomized, "shipment_id": "SH-9999"}
    wrong: list[str] = []
    with httpx.Client(base_url=url, follow_redirects=False, timeout=10) as anonymous:
        for (method, path), _action in ROUTES.items():
            answer = anonymous.request(method, path.format(**values))
            if answer.status_code != 303 or not answer.headers["location"].startswith("/login"):
                wrong.append(f"{method} {path} anonymous: {answer.status_code}")
    for role in Role:
        with _client(url, matrix_user(role)) as client:
            token = _csrf(client)
            for (method, path), action in ROUTES.items():
                allowed = action in PERMISSIONS[role]
                data = {**HARMLESS, "csrf_token": token} if method == "POST" else None
                status = client.request(method, path.format(**values), data=data).status_code
                ok = (status == 200 if method == "GET" else status not in (401, 403)) if allowed else status == 403
                if not ok:
                    wrong.append(f"{method} {path} as {role.value}: {status}, expected {'allowed' if allowed else 403}")
    assert not wrong, "\n".join(wrong)


def test_a_blank_reason_unblinds_nothing(irt_server: tuple[str, str, World]) -> None:
    url, database_url, world = irt_server
    before = _events(database_url, "EmergencyUnblinded")
    with _client(url, "inv.a") as client:
        answer = client.post(
            f"{BASE}/subjects/{world.randomized}/unblind",
            data={"csrf_token": _csrf(client), "reason": "   ", "password": PASSWORD},
        )
    assert answer.status_code == 422 and "Not unblinded" in answer.text and "medical reason" in answer.text
    assert "Treatment:" not in answer.text
    _blinded(answer.text, "the refused unblinding")
    assert _events(database_url, "EmergencyUnblinded") == before


def test_a_coordinator_of_another_site_sees_neither_the_subject_nor_the_shipment(
    irt_server: tuple[str, str, World],
) -> None:
    url, _, world = irt_server
    with _client(url, "coord.b") as client:
        token = _csrf(client)
        assert client.get(f"{BASE}/subjects/{world.randomized}/irt").status_code == 404
        post = client.post(f"{BASE}/subjects/{world.randomized}/irt/dispense", data={"csrf_token": token})
        assert post.status_code == 404
        page = client.get(f"{BASE}/supply")
        assert page.status_code == 200 and world.shipment not in page.text
        receive = client.post(f"{BASE}/supply/shipments/{world.shipment}/receive", data={"csrf_token": token})
        assert receive.status_code == 404


def test_the_irt_pages_are_documented() -> None:
    documented = (Path(REPO_ROOT) / "docs" / "web.md").read_text(encoding="utf-8")
    for fragment in ("…/subjects/{subject}/irt", "…/subjects/{subject}/unblind", "/studies/{study}/supply",
                     "/studies/{study}/pharmacy"):  # fmt: skip
        assert fragment in documented, fragment
