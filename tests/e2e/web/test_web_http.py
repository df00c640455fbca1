"""The pages over plain HTTP (no browser): CSRF, redirects to sign-in, no open redirects, site scoping on
writes, HTML errors for pages while the API keeps problem+json, and only local assets."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.web.support import PASSWORD

STUDY = "/studies/HTN-201"


@pytest.fixture
def coordinator(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, follow_redirects=False, timeout=10) as client:
        answer = client.post("/login", data={"username": "coord.a", "password": PASSWORD, "next": "/"})
        assert answer.status_code == 303
        yield client


def csrf(client: httpx.Client, path: str = STUDY) -> str:
    match = re.search(r'name="csrf-token" content="([0-9a-f]+)"', client.get(path).text)
    assert match is not None
    return match.group(1)


def test_pages_without_a_session_go_to_sign_in(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as client:
        page = client.get(f"{STUDY}/subjects?x=1")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/studies/HTN-201/subjects%3Fx%3D1"
        htmx = client.post(f"{STUDY}/subjects", data={"site_id": "0101"}, headers={"HX-Request": "true"})
        assert htmx.status_code == 200 and htmx.headers["HX-Redirect"].startswith("/login?next=")
        assert "trialstack_stash" in htmx.headers.get("set-cookie", "")


def test_a_post_without_the_csrf_token_is_refused_and_saves_nothing(coordinator: httpx.Client) -> None:
    form = f"{STUDY}/subjects/0101-003/forms/SCREENING.VS"
    before = coordinator.get(form).text
    for token in (None, "0" * 64):
        data = {"item.PULSE": "99", "reason": "test"} | ({"csrf_token": token} if token else {})
        refused = coordinator.post(form, data=data)
        assert refused.status_code == 403 and "security token" in refused.text
    assert re.findall(r'value="(\d+)"', coordinator.get(form).text) == re.findall(r'value="(\d+)"', before)


def test_sign_in_never_redirects_off_site(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as client:
        for target in ("//evil.example/x", "https://evil.example/", "/login?next=/"):
            answer = client.post("/login", data={"username": "monitor", "password": PASSWORD, "next": target})
            assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_a_wrong_password_is_refused_without_saying_why(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as client:
        answer = client.post("/login", data={"username": "builder", "password": "wrong-password-123", "next": "/"})
        assert answer.status_code == 401 and "invalid username, password" in answer.text
        assert "trialstack_session" not in answer.headers.get("set-cookie", "")


def test_writes_to_another_site_are_not_found_and_pages_answer_in_html(coordinator: httpx.Client) -> None:
    token = csrf(coordinator)
    save = coordinator.post(f"{STUDY}/subjects/0102-002/forms/SCREENING.VS", data={"csrf_token": token})
    assert save.status_code == 404 and save.headers["content-type"].startswith("text/html")
    screen = coordinator.post(
        f"{STUDY}/subjects", data={"csrf_token": token, "site_id": "0102", "screened_on": "2026-11-01"}
    )
    assert screen.status_code == 422 and "may not subject.screen" in screen.text
    api = coordinator.get(f"/api/v1{STUDY}/subjects/0102-002")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"


def test_pages_load_only_local_assets_under_the_content_security_policy(coordinator: httpx.Client) -> None:
    page = coordinator.get(f"{STUDY}/subjects/0101-001")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/static/htmx-2.0.11.min.js" in assets
    assert not [asset for asset in assets if asset.startswith(("http:", "https:", "//"))]
    assert "<script>" not in page.text and " style=" not in page.text
    assert coordinator.get("/static/htmx-2.0.11.min.js").status_code == 200


def test_a_save_pinned_to_an_older_casebook_version_is_refused_and_keeps_the_typed_value(
    coordinator: httpx.Client,
) -> None:
    form = f"{STUDY}/subjects/0101-001/forms/SCREENING.VS"
    data = {"csrf_token": csrf(coordinator, form), "version": "1", "item.PULSE": "61", "reason": "late correction"}
    stale = coordinator.post(form, data=data)
    assert stale.status_code == 422 and "reload and apply your change again" in stale.text
    assert 'name="item.PULSE" data-value value="61"' in stale.text
    assert 'name="item.PULSE" data-value value="61"' not in coordinator.get(form).text
