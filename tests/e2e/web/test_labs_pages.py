"""Laboratory pages in the browser, on the demo study with results received through labs' real handlers:

- a subject's page lists each test's results (flag, range, grade, a correction) and draws a chart per numeric test
  with the reference range as a band;
- the data manager assigns a triaged result (it leaves the queue and shows on the subject's page) and cannot
  reject one without a reason; a coordinator may not open the queue;
- the investigator confirms a grade 3 hyperkalaemia alert; a monitor sees alerts without the buttons; a
  coordinator at another site does not see the alert at all.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.web.conftest import _free_port, _wait_until_up
from tests.e2e.web.support import PASSWORD, REPO_ROOT, STUDY, seed
from tests.enrolling import enrolled_subject
from trialstack.bootstrap import bootstrap
from trialstack.labs import commands as cmd
from trialstack.labs import handlers as labs
from trialstack.ledger.envelope import Actor
from trialstack.standards.lab_results import LabObservation, ResultStatus

pytestmark = pytest.mark.browser

FEED = Actor("feed:central-lab", "system")
BASE = f"/studies/{STUDY}"
Desk = Callable[[str], Page]
UNKNOWN_PATIENT = "LAB-99812"
STRAY_PATIENT = "LAB-00055"


@dataclass(frozen=True)
class World:
    url: str
    subject: str


def _result(
    patient: str, code: str, value: str, unit: str, accession: str, collected: str, *, version: str = "1",
    status: ResultStatus = ResultStatus.FINAL,
) -> LabObservation:  # fmt: skip
    return LabObservation(
        location=f"web-e2e {accession} {code} v{version}", patient_id=patient, accession=accession, test_code=code,
        test_system=None, test_name=None, value=value, unit=unit, status=status, version=version,
        collected_at=collected, sex="M", age_years=56,
    )  # fmt: skip


def _seed_labs(database_url: str) -> str:
    """An enrolled subject at site 0101 (Day 1 on 2026-01-05) with potassium at screening (normal), at Week 2
    (6.5 mmol/L: HH, grade 3, an alert), an ALT the laboratory corrected, and two results of unknown patients."""
    platform = bootstrap(database_url=database_url, migrate=True)
    try:
        subject = enrolled_subject(platform)

        def receive(*rows: LabObservation) -> None:
            with platform.unit_of_work(FEED) as uow:
                labs.receive_results(uow, STUDY, cmd.ReceiveLabResults("CENTRAL", rows))
                uow.commit()

        receive(
            _result(subject, "K", "4.2", "mmol/L", "A1", "2026-01-05T08:30:00"),
            _result(subject, "K", "6.5", "mmol/L", "A2", "2026-01-19T08:30:00"),
            _result(subject, "ALT", "30", "U/L", "A1", "2026-01-05T08:30:00"),
            _result(subject, "PLT", "40", "10*9/L", "A2", "2026-01-19T08:30:00"),
            _result(UNKNOWN_PATIENT, "K", "4.7", "mmol/L", "A7", "2026-01-19T09:00:00"),
            _result(STRAY_PATIENT, "NA", "139", "mmol/L", "A8", "2026-01-19T09:00:00"),
        )
        receive(_result(subject, "ALT", "42", "U/L", "A1", "2026-01-05T08:30:00", version="2",
                        status=ResultStatus.CORRECTED))  # fmt: skip
    finally:
        platform.close()
    return subject


@pytest.fixture(scope="module")
def world(chromium: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server of its own (the shared demo server's data stays as the other tests expect it)."""
    folder = tmp_path_factory.mktemp("labs-web")
    database_url = f"sqlite:///{folder / 'labs.db'}"
    seed(database_url)
    subject = _seed_labs(database_url)
    port, log = _free_port(), folder / "server.log"
    command = [sys.executable, "-m", "tests.e2e.web.support", "serve", "--db", database_url, "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield World(url, subject)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def desk(browser: Browser, world: World, request: pytest.FixtureRequest) -> Iterator[Desk]:
    """`desk("inv.a")`: a page of a fresh browser context signed in as that user; screenshots when a test fails."""
    contexts: list[BrowserContext] = []
    failed_before = request.session.testsfailed

    def sign_in(username: str) -> Page:
        context = browser.new_context(base_url=world.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
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
        shots = REPO_ROOT / "artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        for index, page in enumerate(p for c in contexts for p in c.pages):
            page.screenshot(path=shots / f"{request.node.name}-{index}.png", full_page=True)
    for context in contexts:
        context.close()


def test_the_subject_page_lists_results_and_charts_them_with_the_range_band(desk: Desk, world: World) -> None:
    page = desk("coord.a")
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{BASE}/subjects/{world.subject}")
    page.get_by_role("link", name="Laboratory", exact=True).click()
    expect(page.get_by_role("heading", name=f"Laboratory results of subject {world.subject}")).to_be_visible()
    potassium = page.locator("table[data-test='K'] tbody tr")
    expect(potassium.filter(has_text="accession A1")).to_have_count(1)
    expect(potassium.filter(has_text="accession A2")).to_have_count(1)
    high = potassium.filter(has_text="6.5")
    expect(high).to_contain_text("HH")
    expect(high).to_contain_text("3.5–5.1 mmol/L")
    expect(high).to_contain_text("Grade 3")
    expect(high).to_contain_text("Hyperkalemia")
    expect(potassium.filter(has_text="4.2")).to_contain_text("normal")
    alt = page.locator("table[data-test='ALT'] tbody tr")
    expect(alt).to_have_count(1)
    expect(alt).to_contain_text("42")
    expect(alt).to_contain_text("Corrected")
    expect(alt).to_contain_text("version 2")
    canvas = page.locator("canvas#lab-chart-K")
    expect(canvas).to_have_attribute("data-drawn", "true")
    expect(canvas).to_have_attribute("data-band", "true")
    expect(canvas).to_have_attribute("data-datasets", "3")  # low, high filled between them, the values
    described = re.compile(
        r"^Potassium \(mmol/L\) over time: 2026-01-05 08:30 4\.2, 2026-01-19 08:30 6\.5 \(critically high\)"
        r"(, .*)?; reference range 3\.5 to 5\.1$"
    )
    expect(canvas).to_have_attribute("aria-label", described)
    assert problems == [], f"the page logged errors (a CSP violation?): {problems}"


def test_the_data_manager_assigns_a_triaged_result_and_must_give_a_reason_to_reject(desk: Desk, world: World) -> None:
    page = desk("datamanager")
    page.goto(BASE)
    page.get_by_role("link", name="Lab triage").click()
    unknown = page.locator("section.triage-item", has_text=UNKNOWN_PATIENT)
    stray = page.locator("section.triage-item", has_text=STRAY_PATIENT)
    expect(unknown).to_have_count(1)
    expect(unknown).to_contain_text("no subject matches the laboratory's patient id")

    stray.get_by_role("button", name="Reject").click()
    refused = page.locator("section.triage-item", has_text=STRAY_PATIENT)
    expect(refused.get_by_role("alert")).to_contain_text("Not rejected")
    expect(refused.get_by_role("alert")).to_contain_text("reason")
    expect(page.locator("section.triage-item")).to_have_count(2)

    unknown = page.locator("section.triage-item", has_text=UNKNOWN_PATIENT)
    unknown.get_by_label("Subject", exact=True).fill(world.subject)
    unknown.get_by_label("Visit").select_option("WEEK2")
    unknown.get_by_label(f"Remember lab patient id {UNKNOWN_PATIENT}").check()
    unknown.get_by_label("Reason", exact=True).fill("Lab id confirmed with the site by phone")
    unknown.get_by_role("button", name="Assign").click()
    expect(page.get_by_role("status")).to_contain_text("Result assigned")
    expect(page.locator("section.triage-item", has_text=UNKNOWN_PATIENT)).to_have_count(0)
    expect(page.locator("section.triage-item", has_text=STRAY_PATIENT)).to_have_count(1)

    page.get_by_role("link", name="Resolved").click()
    expect(page.locator("#triage-resolved tr", has_text=UNKNOWN_PATIENT)).to_contain_text("Assigned")

    page.goto(f"{BASE}/subjects/{world.subject}/labs")
    expect(page.locator("table[data-test='K'] tbody tr", has_text="4.7")).to_contain_text("accession A7")


def test_a_coordinator_may_not_open_the_triage_queue(desk: Desk) -> None:
    page = desk("coord.a")
    answer = page.goto(f"{BASE}/labs/triage")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("link", name="Lab triage")).to_have_count(0)


def test_a_monitor_sees_the_alert_without_the_review_buttons(desk: Desk, world: World) -> None:
    page = desk("monitor")
    page.goto(f"{BASE}/labs/alerts")
    alert = page.locator("article.lab-alert", has_text="Platelet count decreased")
    expect(alert).to_contain_text(world.subject)
    expect(alert).to_contain_text("Grade 3")
    expect(alert).to_contain_text("40 10*9/L")
    expect(alert.get_by_role("button")).to_have_count(0)


def test_a_coordinator_at_another_site_does_not_see_the_alert(desk: Desk, world: World) -> None:
    page = desk("coord.b")
    page.goto(f"{BASE}/labs/alerts")
    expect(page.get_by_role("heading", name="Laboratory alerts")).to_be_visible()
    expect(page.locator("article.lab-alert")).to_have_count(0)
    expect(page.get_by_text(world.subject)).to_have_count(0)
    answer = page.goto(f"{BASE}/subjects/{world.subject}/labs")
    assert answer is not None and answer.status == 404


def test_the_investigator_confirms_the_alert_with_an_edited_term(desk: Desk, world: World) -> None:
    page = desk("inv.a")
    page.goto(BASE)
    page.get_by_role("link", name="Lab alerts").click()
    alert = page.locator("article.lab-alert", has_text="Hyperkalemia")
    expect(alert.get_by_label("Adverse event term")).to_have_value("Hyperkalemia")
    alert.get_by_label("Adverse event term").fill("Hyperkalemia, asymptomatic")
    alert.get_by_role("button", name="Confirm adverse event").click()
    expect(page.get_by_role("status")).to_contain_text("Alert confirmed")
    expect(page.locator("article.lab-alert", has_text="Hyperkalemia")).to_have_count(0)
    expect(page.locator("#alerts-decided tr", has_text=world.subject)).to_contain_text(
        "adverse event: Hyperkalemia, asymptomatic"
    )
