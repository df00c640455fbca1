"""The study dashboard in chromium, as the sponsor viewer: from the study home to the dashboard, whose charts are
drawn on their canvases (the vendored Chart.js); a subject screened in another session changes a figure without a
reload (the server's `kris` event, then the figures fragment fetched again); a figure drills down to its rows."""

from __future__ import annotations

import re

import httpx
import pytest
from argon2 import PasswordHasher
from playwright.sync_api import expect

from tests.e2e.web.conftest import Login
from tests.e2e.web.support import PASSWORD, STUDY
from trialstack.bootstrap import bootstrap
from trialstack.identity import commands as cmd
from trialstack.identity import handlers
from trialstack.identity.crypto import Passwords, use_passwords
from trialstack.identity.policy import Role
from trialstack.identity.readmodel import find_user
from trialstack.ledger.envelope import Actor

pytestmark = pytest.mark.browser
SPONSOR = "sponsor.viewer"
BASE = f"/studies/{STUDY}"
PAINTED = """() => Array.from(document.querySelectorAll("canvas[data-kri-chart]")).map((canvas) => {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let alpha = 3; alpha < pixels.length; alpha += 4) { if (pixels[alpha] !== 0) { return true; } }
  return false;
})"""


@pytest.fixture(scope="module")
def sponsor(web_database: str) -> str:
    """A sponsor viewer of the study (every site), added to the browser tests' database."""
    previous = use_passwords(Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)))
    platform = bootstrap(database_url=web_database)
    try:
        with platform.engine.connect() as connection:
            known = find_user(connection, SPONSOR) is not None
        if not known:
            with platform.unit_of_work(Actor("os:web-e2e", "admin")) as uow:
                handlers.register_user(uow, cmd.RegisterUser(SPONSOR, "Sponsor Viewer", PASSWORD))
                handlers.grant_role(uow, cmd.GrantRole(SPONSOR, STUDY, Role.SPONSOR_VIEWER, frozenset()))
                uow.commit()
    finally:
        platform.close()
        use_passwords(previous)
    return SPONSOR


def test_the_sponsor_dashboard_draws_its_charts_and_follows_a_screening_live(login: Login, sponsor: str) -> None:
    page = login(sponsor)
    page.goto(BASE)
    page.get_by_role("link", name="Open the study dashboard").click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("link", name="Sponsor", exact=True)).to_have_attribute("aria-current", "page")
    expect(page.locator("canvas[data-drawn=true]")).to_have_count(3)
    assert page.evaluate(PAINTED) == [True, True, True]
    expect(page.locator("#chart-enrolment")).to_have_attribute("aria-label", re.compile(r"Enrolment: 2026-01: \d+"))
    expect(page.locator("#kri-live-state")).to_have_text("Live")
    screened = int(page.locator("#kri-total-screened").inner_text())
    page.evaluate("() => { window.notReloaded = true; }")

    coordinator = login("coord.a")
    coordinator.goto(f"{BASE}/subjects")
    coordinator.get_by_role("button", name="Screen subject").click()
    coordinator.wait_for_url(re.compile(r"/subjects/0101-\d+\?screened=1"))

    expect(page.locator("#kri-total-screened")).to_have_text(str(screened + 1), timeout=20_000)
    assert page.evaluate("() => window.notReloaded === true"), "the figures changed without a reload"
    expect(page.locator("#kri-live-state")).to_contain_text("updated")
    expect(page.locator("canvas[data-drawn=true]")).to_have_count(3)
    assert page.evaluate(PAINTED) == [True, True, True], "the swapped-in charts are drawn again"

    page.locator("#kri-ENROLMENT_VS_PLAN-0101").click()
    expect(page.locator("h1")).to_have_text("Enrolment against plan · site 0101")
    subject = re.search(r"/subjects/(0101-\d+)", coordinator.url).group(1)  # type: ignore[union-attr]
    link = page.get_by_role("link", name=subject, exact=True)
    expect(link).to_have_attribute("href", f"{BASE}/subjects/{subject}")
    assert not page.get_by_role("link", name=re.compile(r"^0102-")).count(), "one site's rows only"


def test_the_dashboard_its_live_signal_and_drill_down_need_kri_read(live_server: str, sponsor: str) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as anonymous:
        assert anonymous.get(f"{BASE}/dashboard/live?max_seconds=0").status_code == 401
    with httpx.Client(base_url=live_server, timeout=10) as coordinator:
        coordinator.post("/login", data={"username": "coord.a", "password": PASSWORD, "next": "/"})
        assert coordinator.get(f"{BASE}/dashboard").status_code == 403
        assert coordinator.get(f"{BASE}/dashboard/live?max_seconds=0").status_code == 403
    with httpx.Client(base_url=live_server, timeout=10) as viewer:
        viewer.post("/login", data={"username": sponsor, "password": PASSWORD, "next": "/"})
        page = viewer.get(f"{BASE}/dashboard?view=data_manager")
        assert page.status_code == 200 and "<script>" not in page.text and " style=" not in page.text
        assert re.search(r'data-live="/studies/HTN-201/dashboard/live\?after=\d+"', page.text)
        stream = viewer.get(f"{BASE}/dashboard/live?after=0&max_seconds=0")
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert re.search(r"^id: \d+\nevent: kris\ndata: \{\"seq\": \d+\}$", stream.text, re.MULTILINE)
        drill = viewer.get(f"{BASE}/dashboard/kris/NO_SUCH_KRI")
        assert drill.status_code == 404 and "QUERY_AGE_OVER_30" in drill.text
