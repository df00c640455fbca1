"""Every route under /api/v1 × every role: allowed or refused exactly as PERMISSIONS says.

A route declares what it needs with `requires(Action.X)` (or `PUBLIC`); the few self-service routes that only need
a signed-in user are listed here. A route that declares nothing fails `test_every_route_declares_its_access`, so
a new endpoint cannot ship without deciding who may call it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import FastAPI

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
from trialstack.api.security import (
    Authorized,
    RequireAction,
    RouteAccess,
    declaration_problems,
    requires,
    route_actions,
)
from trialstack.bootstrap import Platform
from trialstack.identity import commands as identity_commands
from trialstack.identity import handlers as identity_handlers
from trialstack.identity.model import SITE_ROLES
from trialstack.identity.policy import PERMISSIONS, Action, Role

TestClient = client_class()
SELF_SERVICE = {
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/studies"),
    ("DELETE", "/api/v1/session"),
}
"""Routes any signed-in user may call whatever their role (they act on the caller's own session or grants)."""
PATH_VALUES = {"study_id": STUDY, "site_id": SITE_A}


def url_for(path: str, **overrides: str) -> str:
    values = {**PATH_VALUES, **overrides}
    url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "X-404"), path)
    return url + "?max_seconds=0" if url.endswith("/events/stream") else url


def test_every_route_declares_its_access(platform: Platform) -> None:
    routes = route_actions(create_app(platform))
    undeclared = [f"{r.method} {r.path}" for r in routes if not r.declared and (r.method, r.path) not in SELF_SERVICE]
    assert not undeclared, (
        "routes without requires(Action...) or PUBLIC (add one, or list a self-service route in SELF_SERVICE): "
        + ", ".join(undeclared)
    )
    assert [problem for route in routes for problem in declaration_problems(route)] == []
    stale = SELF_SERVICE - {(r.method, r.path) for r in routes}
    assert not stale, f"SELF_SERVICE names routes that no longer exist: {stale}"


def test_an_undeclared_route_is_reported(platform: Platform) -> None:
    app: FastAPI = create_app(platform)

    @app.get("/api/v1/studies/{study_id}/forgotten")
    def forgotten(study_id: str) -> dict[str, str]:
        return {}

    @app.get("/api/v1/studies/{study_id}/misdeclared")
    def misdeclared(auth: Annotated[Authorized, requires(Action.DATA_ENTER)]) -> dict[str, str]:
        return {}

    routes = {(r.method, r.path): r for r in route_actions(app)}
    assert not routes[("GET", "/api/v1/studies/{study_id}/forgotten")].declared
    assert declaration_problems(routes[("GET", "/api/v1/studies/{study_id}/misdeclared")]) == [
        "GET /api/v1/studies/{study_id}/misdeclared: requires(data.enter) reads {site_id}"
    ]


OWN_SUBJECT = f"{SITE_A}-901"
"""The subject the matrix's participant account belongs to (participant accounts are opened, never granted)."""


def alternatives(need: RequireAction) -> tuple[Action, ...]:
    """The actions a route accepts: one, or several for routes open to staff and to the participant (consent)."""
    return tuple(getattr(need, "actions", (need.action,)))


def expected(route: RouteAccess, role: Role) -> bool:
    return all(any(action in PERMISSIONS[role] for action in alternatives(need)) for need in route.actions)


def add_matrix_user(platform: Platform, role: Role) -> str:
    username = f"matrix-{role.value.replace('_', '-')}"
    if role is Role.PARTICIPANT:
        with platform.unit_of_work(ADMIN) as uow:
            identity_handlers.open_participant_account(
                uow, identity_commands.OpenParticipantAccount(username, PASSWORD, STUDY, SITE_A, OWN_SUBJECT)
            )
            uow.commit()
    else:
        add_user(platform, username, role, frozenset({SITE_A}) if role in SITE_ROLES else frozenset())
    return username


def test_route_role_matrix(platform: Platform) -> None:
    app = create_app(platform)
    client = TestClient(app)
    routes = [r for r in route_actions(app) if not r.public]
    tokens = {}
    for role in Role:
        tokens[role] = bearer(token_for(platform, add_matrix_user(platform, role)))
    wrong: list[str] = []

    def check(route: RouteAccess, role: Role | None, url: str, allowed: bool) -> None:
        headers = tokens[role] if role is not None else {}
        response = client.request(route.method, url, headers=headers, json={})
        status = response.status_code
        refused = 401 if role is None else 403
        ok = status == refused if role is None or not allowed else status not in (401, 403)
        if ok and status in (401, 403):
            ok = response.headers["content-type"] == "application/problem+json"
        if not ok:
            who = role.value if role is not None else "anonymous"
            wrong.append(f"{route.method} {url} as {who}: {status}, expected {'allowed' if allowed else 'refused'}")

    for route in routes:
        check(route, None, url_for(route.path), False)
        for role in Role:
            allowed = expected(route, role)
            check(route, role, url_for(route.path), allowed)
            if allowed and role in SITE_ROLES and "{site_id}" in route.path:
                check(route, role, url_for(route.path, site_id=SITE_B), False)
    assert not wrong, "\n".join(wrong)
    covered: dict[str, Any] = {f"{r.method} {r.path}": [a.action.value for a in r.actions] for r in routes}
    assert covered, "no protected route found under /api/v1"
    consent = {key for key in covered if "/consent" in key or "participant-" in key}
    assert len(consent) >= 8, f"the consent routes are not in the matrix: {sorted(consent)}"
    ecoa = {key for key in covered if "/questionnaires" in key or "/ecoa/" in key}
    assert len(ecoa) == 6, f"the eCOA routes are not all in the matrix: {sorted(ecoa)}"
    assert covered["POST /api/v1/studies/{study_id}/subjects/{subject_id}/ecoa/alerts/{alert}/acknowledgement"] == [
        Action.ECOA_ALERT_ACKNOWLEDGE.value
    ]


def test_a_participant_reaches_only_participant_routes(platform: Platform) -> None:
    """Besides the self-service routes, every route a participant may call declares PARTICIPANT_SELF and names the
    subject (whose site decides, and which must be their own: tests/e2e/api/test_consent_api.py); every other
    route answers them 403 in the matrix above."""
    app = create_app(platform)
    routes = [r for r in route_actions(app) if not r.public and (r.method, r.path) not in SELF_SERVICE]
    for_participant = [r for r in routes if expected(r, Role.PARTICIPANT)]
    assert for_participant, "no route is open to participants"
    for route in for_participant:
        assert all(Action.PARTICIPANT_SELF in alternatives(need) for need in route.actions), route
        assert "{subject_id}" in route.path, f"{route.method} {route.path}: a participant route names the subject"
    staff = [r for r in routes if not expected(r, Role.PARTICIPANT)]
    assert any("/consent" in r.path for r in staff), "staff consent routes (tracker, countersign, paper) exist"
    ecoa = {
        (r.method, r.path.removeprefix("/api/v1/studies/{study_id}"))
        for r in for_participant
        if "questionnaires" in r.path
    }
    assert ecoa == {
        ("GET", "/subjects/{subject_id}/questionnaires/due"),
        ("GET", "/subjects/{subject_id}/questionnaires"),
        ("POST", "/subjects/{subject_id}/questionnaires"),
        ("PUT", "/subjects/{subject_id}/questionnaires/time-zone"),
    }, ecoa
    assert not [r for r in for_participant if "/ecoa/alerts" in r.path], "alerts are for site staff only"
