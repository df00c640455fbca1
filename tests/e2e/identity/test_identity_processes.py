"""Two server processes on one database (SQLite and PostgreSQL): the sign-in throttle, the lockout and the idle
timeout of sessions hold across them, because they live in the database, not in process memory.

Each "process" is its own Platform (its own engine and connection pool) with its own app; they share the
database and a FixedClock, which the tests move instead of sleeping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.integration.identity.support import PASSWORD, SITE_A, add_user, client_class
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform, bootstrap
from trialstack.clock import FixedClock
from trialstack.identity.throttle import LoginThrottle
from trialstack.settings import Settings

TestClient = client_class()
WRONG = "Wrong-password-12"


def app_client(platform: Platform) -> Any:
    return TestClient(create_app(platform), follow_redirects=False)


@pytest.fixture
def second(platform: Platform, clock: FixedClock) -> Iterator[Platform]:
    """Another server process on the same database (already migrated by `platform`), with the same clock."""
    other = bootstrap(Settings(database_url=platform.settings.database_url), clock=clock)
    try:
        yield other
    finally:
        other.close()


def sign_in(client: Any, username: str, password: str = PASSWORD) -> httpx.Response:
    response: httpx.Response = client.post("/api/v1/session", json={"username": username, "password": password})
    return response


def problem_code(response: httpx.Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]


def test_failed_sign_ins_on_one_process_throttle_the_other(platform: Platform, second: Platform) -> None:
    first_app, second_app = app_client(platform), app_client(second)
    for attempt in range(10):
        answer = sign_in(first_app if attempt % 2 else second_app, "nobody", WRONG)
        assert answer.status_code == 401, answer.text
    for app in (first_app, second_app):
        refused = sign_in(app, "nobody", WRONG)
        assert refused.status_code == 429 and problem_code(refused) == "too-many-attempts"
        assert refused.headers["retry-after"] == "300"  # every failure happened at this very instant
    assert sign_in(first_app, "somebody", WRONG).status_code == 401  # another username is counted apart
    restarted = bootstrap(Settings(database_url=platform.settings.database_url), clock=second.clock)
    try:
        assert sign_in(app_client(restarted), "nobody", WRONG).status_code == 429  # a restart forgets nothing
    finally:
        restarted.close()
    assert isinstance(platform.clock, FixedClock)
    platform.clock.advance(timedelta(minutes=5))
    assert sign_in(second_app, "nobody", WRONG).status_code == 401


def test_the_web_sign_in_page_shares_the_throttle_with_the_api(platform: Platform, second: Platform) -> None:
    api, web = app_client(platform), app_client(second)
    for _ in range(9):
        assert sign_in(api, "nobody", WRONG).status_code == 401
    form = {"username": "Nobody", "password": WRONG, "next": "/"}
    assert web.post("/login", data=form).status_code == 401
    refused = web.post("/login", data=form)
    assert refused.status_code == 429 and "too many sign-in attempts" in refused.text
    assert sign_in(api, "nobody", WRONG).status_code == 429


def test_a_success_clears_the_count_for_every_process(platform: Platform, second: Platform) -> None:
    add_user(platform, "cora")
    throttle = LoginThrottle(platform.engine)
    now = platform.clock.now()
    for _ in range(4):
        assert sign_in(app_client(second), "cora", WRONG).status_code == 401
    assert throttle.count("cora", "testclient", now) == 4
    assert sign_in(app_client(second), "cora").status_code == 201
    assert throttle.count("cora", "testclient", now) == 0


def test_the_lockout_counts_failures_on_every_process(platform: Platform, second: Platform) -> None:
    add_user(platform, "cora")
    first_app, second_app = app_client(platform), app_client(second)
    for attempt in range(5):
        assert sign_in(first_app if attempt % 2 else second_app, "cora", WRONG).status_code == 401
    for app in (first_app, second_app):
        assert sign_in(app, "cora").status_code == 401  # locked: the right password is refused too


def test_an_idle_api_session_expires_on_every_process_and_activity_extends_it(
    platform: Platform, second: Platform
) -> None:
    add_user(platform, "cora")
    assert isinstance(platform.clock, FixedClock)
    clock = platform.clock
    first_app = app_client(platform)
    assert sign_in(first_app, "cora").status_code == 201
    second_app = app_client(second)
    second_app.cookies = first_app.cookies
    for app in (second_app, first_app, second_app):  # 14 minutes between requests, 42 minutes in all
        clock.advance(timedelta(minutes=14))
        assert app.get("/api/v1/me").status_code == 200
    clock.advance(timedelta(minutes=15))
    expired = first_app.get("/api/v1/me")
    assert expired.status_code == 401 and problem_code(expired) == "session-expired"
    assert "idle for more than 15 minutes" in expired.json()["detail"]
    assert second_app.get("/api/v1/me").status_code == 401  # a refused request is no activity
    assert sign_in(first_app, "cora").status_code == 201
    assert first_app.get("/api/v1/me").status_code == 200


def test_the_idle_timeout_follows_the_setting(platform: Platform, second: Platform) -> None:
    add_user(platform, "cora")
    strict = bootstrap(
        Settings(database_url=platform.settings.database_url, session_idle_minutes=5), clock=second.clock
    )
    try:
        client = app_client(strict)
        assert sign_in(client, "cora").status_code == 201
        assert isinstance(platform.clock, FixedClock)
        platform.clock.advance(timedelta(minutes=5) - timedelta(microseconds=1))
        assert client.get("/api/v1/me").status_code == 200
        platform.clock.advance(timedelta(minutes=5))
        assert problem_code(client.get("/api/v1/me")) == "session-expired"
    finally:
        strict.close()


def test_an_idle_web_session_goes_to_sign_in_with_a_message(platform: Platform, second: Platform) -> None:
    add_user(platform, "cora")
    assert isinstance(platform.clock, FixedClock)
    web, other = app_client(platform), app_client(second)
    assert web.post("/login", data={"username": "cora", "password": PASSWORD, "next": "/"}).status_code == 303
    other.cookies = web.cookies
    platform.clock.advance(timedelta(minutes=10))
    assert other.get("/studies").status_code == 200
    platform.clock.advance(timedelta(minutes=10))
    assert web.get("/studies").status_code == 200  # 20 minutes after sign-in, 10 after the last page
    platform.clock.advance(timedelta(minutes=15))
    sent = other.get("/studies?x=1")
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login?next=/studies%3Fx%3D1&expired=idle"
    login_page = web.get(sent.headers["location"])
    assert login_page.status_code == 200
    notice = re.search(r'role="status">([^<]*)<', login_page.text)
    assert notice is not None
    assert notice.group(1) == (
        "You were signed out after 15 minutes without activity. Sign in again to continue where you were."
    )
    again = web.post("/login", data={"username": "cora", "password": PASSWORD, "next": "/studies?x=1"})
    assert again.status_code == 303 and again.headers["location"] == "/studies?x=1"
    assert web.get("/studies").status_code == 200


def test_a_session_ended_by_sign_out_says_ended_not_idle(platform: Platform) -> None:
    add_user(platform, "cora", sites=frozenset({SITE_A}))
    web = app_client(platform)
    assert web.post("/login", data={"username": "cora", "password": PASSWORD, "next": "/"}).status_code == 303
    stolen = dict(web.cookies)
    csrf = stolen["trialstack_csrf"]
    assert web.post("/logout", data={"csrf_token": csrf}).status_code == 303
    replay = app_client(platform)
    replay.cookies = stolen
    sent = replay.get("/studies")
    assert sent.status_code == 303 and sent.headers["location"].endswith("&expired=1")
    assert "Your session has ended" in replay.get(sent.headers["location"]).text
