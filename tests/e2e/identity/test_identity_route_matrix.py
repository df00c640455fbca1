"""Every route under /api/v1 × every role: allowed or refused exactly as PERMISSIONS says.

A route declares what it needs with `requires(Action.X)` (or `PUBLIC`); the few self-service routes that only need
a signed-in user are listed here. A route that declares nothing fails `test_every_route_declares_its_access`, so
a new endpoint cannot ship without deciding who may call it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import FastAPI

from tests.integration.identity.support import SITE_A, SITE_B, STUDY, add_user, bearer, client_class, token_for
from trialstack.api.app import create_app
from trialstack.api.security import Authorized, RouteAccess, declaration_problems, requires, route_actions
from trialstack.bootstrap import Platform
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


def expected(route: RouteAccess, role: Role) -> bool:
    return all(need.action in PERMISSIONS[role] for need in route.actions)


def test_route_role_matrix(platform: Platform) -> None:
    app = create_app(platform)
    client = TestClient(app)
    routes = [r for r in route_actions(app) if not r.public]
    tokens = {}
    for role in Role:
        username = f"matrix-{role.value.replace('_', '-')}"
        add_user(platform, username, role, frozenset({SITE_A}) if role in SITE_ROLES else frozenset())
        tokens[role] = bearer(token_for(platform, username))
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
