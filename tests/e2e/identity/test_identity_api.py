"""Sign-in, sessions, tokens, CSRF, throttling, site scoping and blinding through the HTTP API (SQLite and
PostgreSQL), with problem+json answers."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from tests.integration.identity.support import (
    ADMIN,
    PASSWORD,
    SITE_A,
    SITE_B,
    STUDY,
    add_user,
    bearer,
    client_class,
    token_for,
)
from trialstack.api.app import create_app
from trialstack.api.middleware import RedactSecretsFilter, redact
from trialstack.api.security import CSRF_HEADER, Authorized, requires
from trialstack.bootstrap import Platform
from trialstack.clock import FixedClock
from trialstack.identity import commands as cmd
from trialstack.identity import handlers
from trialstack.identity.policy import Action, Role
from trialstack.ledger import store

if TYPE_CHECKING:
    from starlette.testclient import TestClient as Client

TestClient = client_class()


def probe_app(platform: Platform) -> FastAPI:
    """The real app plus two probes that declare their action like capture routes do."""
    app = create_app(platform)
    router = APIRouter(prefix="/api/v1/studies/{study_id}")

    @router.post("/sites/{site_id}/probe")
    def site_probe(auth: Annotated[Authorized, requires(Action.DATA_ENTER)]) -> dict[str, Any]:
        return {"actor": auth.actor.id, "role": auth.actor.role, "site": auth.site_id}

    @router.get("/allocations-probe")
    def allocation_probe(auth: Annotated[Authorized, requires(Action.ALLOCATION_READ, site=None)]) -> dict[str, Any]:
        return {"unblinded": auth.unblinded}

    app.include_router(router)
    return app


@pytest.fixture
def client(platform: Platform) -> Client:
    return TestClient(probe_app(platform))


def sign_in(client: Client, username: str, password: str = PASSWORD, **extra: str) -> httpx.Response:
    # Starlette types TestClient against httpx2, which is not installed, so its methods return Any.
    response: httpx.Response = client.post(
        "/api/v1/session", json={"username": username, "password": password, **extra}
    )
    return response


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].endswith("/" + code) and body["title"] and body["detail"]
    return body


def test_sign_in_sets_a_session_cookie_and_me_shows_the_grants(platform: Platform, client: Client) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    response = sign_in(client, "Cora")
    assert response.status_code == 201, response.text
    cookie = response.headers.get_list("set-cookie")
    assert any(c.startswith("trialstack_session=") and "HttpOnly" in c and "SameSite=lax" in c for c in cookie)
    me = client.get("/api/v1/me").json()
    assert me["username"] == "cora" and me["authenticated_by"] == "session"
    assert me["grants"] == [{"study_id": STUDY, "role": "study_coordinator", "sites": [SITE_A], "unblinded": False}]
    assert me["csrf_token"] == response.json()["csrf_token"]


def test_wrong_password_is_a_401_problem_with_a_bearer_challenge(platform: Platform, client: Client) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    response = sign_in(client, "cora", "Wrong-password-12")
    body = assert_problem(response, 401, "not-authenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Wrong" not in response.text and "locked" in body["detail"]
    assert_problem(client.get("/api/v1/me"), 401, "not-authenticated")


def test_five_failures_lock_the_account_even_for_the_right_password(platform: Platform, client: Client) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    for _ in range(5):
        assert sign_in(client, "cora", "Wrong-password-12").status_code == 401
    assert_problem(sign_in(client, "cora"), 401, "not-authenticated")
    with platform.engine.connect() as connection:
        kinds = [e.event_type for e in store.iter_study(connection, "_platform")]
    assert kinds.count("LoginFailed") == 5 and kinds[-1] == "UserLockedOut"
    with platform.unit_of_work(ADMIN) as uow:
        handlers.unlock_user(uow, cmd.UnlockUser("cora", reason="identity confirmed by phone"))
        uow.commit()
    assert sign_in(client, "cora").status_code == 201


def test_repeated_failures_from_one_address_are_throttled(platform: Platform, client: Client) -> None:
    for _ in range(10):
        assert sign_in(client, "nobody", "Wrong-password-12").status_code == 401
    response = sign_in(client, "nobody", "Wrong-password-12")
    assert_problem(response, 429, "too-many-attempts")
    assert int(response.headers["retry-after"]) > 0
    assert isinstance(platform.clock, FixedClock)
    platform.clock.advance(timedelta(minutes=5))
    assert sign_in(client, "nobody", "Wrong-password-12").status_code == 401


def test_sign_in_needs_a_json_body(platform: Platform, client: Client) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    response = client.post("/api/v1/session", data={"username": "cora", "password": PASSWORD})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


def test_cookie_sessions_need_the_csrf_token_for_unsafe_methods(platform: Platform, client: Client) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    csrf = sign_in(client, "cora").json()["csrf_token"]
    probe = f"/api/v1/studies/{STUDY}/sites/{SITE_A}/probe"
    assert_problem(client.post(probe), 403, "csrf-rejected")
    assert_problem(client.post(probe, headers={CSRF_HEADER: "0" * 64}), 403, "csrf-rejected")
    assert client.post(probe, headers={CSRF_HEADER: csrf}).json() == {
        "actor": "user:cora",
        "role": "study_coordinator",
        "site": SITE_A,
    }
    assert_problem(client.delete("/api/v1/session"), 403, "csrf-rejected")
    assert client.delete("/api/v1/session", headers={CSRF_HEADER: csrf}).status_code == 204
    assert_problem(client.get("/api/v1/me"), 401, "not-authenticated")


def test_a_replayed_cookie_is_refused_after_sign_out(platform: Platform, client: Client) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    csrf = sign_in(client, "cora").json()["csrf_token"]
    stolen = dict(client.cookies)
    client.delete("/api/v1/session", headers={CSRF_HEADER: csrf})
    replay = TestClient(client.app, cookies=stolen)
    body = assert_problem(replay.get("/api/v1/me"), 401, "not-authenticated")
    assert "ended" in body["detail"]
    cookie = stolen["trialstack_session"]
    middle = (cookie.rindex(".") + len(cookie)) // 2  # inside the signature; its last character has unused bits
    forged_cookie = cookie[:middle] + ("a" if cookie[middle] != "a" else "b") + cookie[middle + 1 :]
    forged = TestClient(client.app, cookies={"trialstack_session": forged_cookie})
    assert_problem(forged.get("/api/v1/me"), 401, "not-authenticated")


def test_bearer_tokens_need_no_csrf_and_fail_when_expired_or_revoked(platform: Platform, client: Client) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    token = token_for(platform, "cora")
    with platform.unit_of_work(ADMIN) as uow:
        short = handlers.issue_api_token(uow, "cora", expires_at=platform.clock.now() + timedelta(hours=1))
        uow.commit()
    probe = f"/api/v1/studies/{STUDY}/sites/{SITE_A}/probe"
    assert client.post(probe, headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(short.secret)).json()["authenticated_by"] == "token"
    assert isinstance(platform.clock, FixedClock)
    platform.clock.advance(timedelta(hours=1))
    assert (
        "expired"
        in assert_problem(client.get("/api/v1/me", headers=bearer(short.secret)), 401, "not-authenticated")["detail"]
    )
    with platform.unit_of_work(ADMIN) as uow:
        handlers.revoke_api_token(uow, token.split("_")[1])
        uow.commit()
    assert "revoked" in assert_problem(client.post(probe, headers=bearer(token)), 401, "not-authenticated")["detail"]
    assert_problem(client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401, "not-authenticated")


def test_a_site_a_coordinator_cannot_act_at_site_b(platform: Platform, client: Client) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    headers = bearer(token_for(platform, "cora"))
    assert client.post(f"/api/v1/studies/{STUDY}/sites/{SITE_A}/probe", headers=headers).status_code == 200
    body = assert_problem(
        client.post(f"/api/v1/studies/{STUDY}/sites/{SITE_B}/probe", headers=headers), 403, "forbidden"
    )
    assert f"at site {SITE_B}" in body["detail"]
    assert_problem(client.post(f"/api/v1/studies/OTHER-1/sites/{SITE_A}/probe", headers=headers), 403, "forbidden")


def test_blinded_roles_are_never_unblinded(platform: Platform, client: Client) -> None:
    add_user(platform, "ines", Role.INVESTIGATOR, frozenset({SITE_A}))
    add_user(platform, "phil", Role.UNBLINDED_PHARMACIST, frozenset({SITE_A}))
    add_user(platform, "adam", Role.ADMIN)
    probe = f"/api/v1/studies/{STUDY}/allocations-probe"
    for blinded in ("ines", "adam"):
        assert_problem(client.get(probe, headers=bearer(token_for(platform, blinded))), 403, "forbidden")
    assert client.get(probe, headers=bearer(token_for(platform, "phil"))).json() == {"unblinded": True}
    me = client.get("/api/v1/me", headers=bearer(token_for(platform, "ines"))).json()
    assert [grant["unblinded"] for grant in me["grants"]] == [False]


def test_a_study_scoped_token_sees_only_that_study(platform: Platform, client: Client) -> None:
    add_user(platform, "mona", Role.MONITOR)
    with platform.unit_of_work(ADMIN) as uow:
        handlers.grant_role(uow, cmd.GrantRole("mona", "OTHER-1", Role.MONITOR))
        uow.commit()
    me = client.get("/api/v1/me", headers=bearer(token_for(platform, "mona", study="OTHER-1"))).json()
    assert [grant["study_id"] for grant in me["grants"]] == ["OTHER-1"]


def test_study_access_lists_who_holds_which_role_for_admins_only(platform: Platform, client: Client) -> None:
    add_user(platform, "adam", Role.ADMIN)
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    url = f"/api/v1/studies/{STUDY}/access"
    users = client.get(url, headers=bearer(token_for(platform, "adam"))).json()["users"]
    assert [(u["username"], u["roles"]) for u in users] == [
        ("adam", [{"role": "admin", "sites": ["*"]}]),
        ("cora", [{"role": "study_coordinator", "sites": [SITE_A]}]),
    ]
    assert_problem(client.get(url, headers=bearer(token_for(platform, "cora"))), 403, "forbidden")


def test_every_answer_carries_the_secure_headers(client: Client) -> None:
    for response in (client.get("/health"), client.get("/api/v1/me")):
        headers = response.headers
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    assert client.get("/api/v1/me").headers["cache-control"] == "no-store"


def test_credentials_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("trialstack.test-redaction")
    logger.addFilter(RedactSecretsFilter())
    with caplog.at_level(logging.INFO, logger="trialstack.test-redaction"):
        logger.info("headers %s", {"authorization": "Bearer tsk_0a1b2c_SECRETSECRET"})
        logger.info('body {"username": "cora", "password": "Sphygmo-manometer-7", "totp": "123456"}')
    text = caplog.text
    assert "SECRETSECRET" not in text and "Sphygmo" not in text and "123456" not in text
    assert redact("trialstack_session=eyJzaWQiOi.abc; Path=/") == "trialstack_session=[redacted]; Path=/"
