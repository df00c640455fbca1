"""Sign-in endpoints: open and close a session, who am I, and who has access to a study."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from trialstack.api.openapi import AUTHENTICATED_ERRORS, problem_responses
from trialstack.api.platform import platform_of
from trialstack.api.security import (
    CSRF_COOKIE,
    PUBLIC,
    SESSION_COOKIE,
    Authentication,
    Authorized,
    authentication,
    requires,
    secure_cookies,
    session_signer,
)
from trialstack.errors import InvalidInput
from trialstack.identity.authentication import IDENTITY_SYSTEM, LoginResult, login, logout, user_actor
from trialstack.identity.model import NotAuthenticated, SecondFactorRequired
from trialstack.identity.policy import UNBLINDED_ROLES, Action, Principal
from trialstack.identity.readmodel import list_users
from trialstack.identity.sessions import SESSION_MAX_AGE, SessionClaim
from trialstack.ledger.errors import ConcurrencyConflict

router = APIRouter(prefix="/api/v1", tags=["identity"], responses=AUTHENTICATED_ERRORS)
MAX_ATTEMPTS = 3


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, max_length=10, description="The one-time code, when the account has one.")


def _grants(principal: Principal) -> list[dict[str, Any]]:
    return [
        {
            "study_id": grant.study_id,
            "role": grant.role.value,
            "sites": sorted(grant.sites),
            "unblinded": grant.role in UNBLINDED_ROLES,
        }
        for grant in principal.grants
    ]


def _me(auth: Authentication, csrf_token: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": auth.principal.username,
        "display_name": auth.principal.display_name,
        "authenticated_by": auth.method,
        "grants": _grants(auth.principal),
    }
    if csrf_token is not None:
        body["csrf_token"] = csrf_token
    return body


def _attempt(request: Request, body: LoginRequest, username: str) -> LoginResult:
    platform = platform_of(request)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with platform.unit_of_work(IDENTITY_SYSTEM, request.headers.get("x-request-id")) as uow:
                result = login(uow, username, body.password, body.totp)
                uow.commit()
                return result
        except ConcurrencyConflict:
            if attempt == MAX_ATTEMPTS:
                raise
    raise NotAuthenticated("sign-in did not complete")  # pragma: no cover


@router.post("/session", status_code=201, dependencies=[PUBLIC], responses=problem_responses(413, 429))
def post_session(body: LoginRequest, request: Request) -> JSONResponse:
    """Sign in with username, password (and one-time code): sets the session cookie, returns the CSRF token."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidInput("sign in with a JSON body (Content-Type: application/json)", field="Content-Type")
    username = body.username.strip().lower()
    address = request.client.host if request.client is not None else "unknown"
    throttle = request.app.state.login_throttle
    throttle.check(username, address, platform_of(request).clock.now())
    try:
        result = _attempt(request, body, username)
    except NotAuthenticated as error:
        if not isinstance(error, SecondFactorRequired):
            throttle.failed(username, address, platform_of(request).clock.now())
        raise
    throttle.succeeded(username, address)
    signer = session_signer(request)
    csrf = signer.csrf_token(result.session_id)
    auth = Authentication(result.principal, "session", session_id=result.session_id)
    response = JSONResponse({**_me(auth, csrf), "method": result.method}, status_code=201)
    secure = secure_cookies(request)
    max_age = int(SESSION_MAX_AGE.total_seconds())
    cookie = signer.dumps(SessionClaim(result.session_id, username))
    response.set_cookie(SESSION_COOKIE, cookie, max_age=max_age, httponly=True, secure=secure, samesite="lax")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, secure=secure, samesite="strict")
    return response


@router.delete("/session", status_code=204)
def delete_session(request: Request, auth: Annotated[Authentication, Depends(authentication)]) -> Response:
    """Sign out: the session ends in the ledger (UserLoggedOut) and its cookies are cleared."""
    if auth.session_id is not None:
        platform = platform_of(request)
        with platform.unit_of_work(user_actor(auth.principal.username), request.headers.get("x-request-id")) as uow:
            logout(uow, auth.session_id)
            uow.commit()
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.get("/me")
def get_me(request: Request, auth: Annotated[Authentication, Depends(authentication)]) -> dict[str, Any]:
    """The signed-in user, how they authenticated, and their grants (study, role, sites, blinding)."""
    csrf = session_signer(request).csrf_token(auth.session_id) if auth.session_id is not None else None
    return _me(auth, csrf)


@router.get("/studies/{study_id}/access")
def get_study_access(
    study_id: str, request: Request, auth: Annotated[Authorized, requires(Action.USER_ADMIN, site=None)]
) -> dict[str, Any]:
    """Who holds which role at which sites in the study (user administration)."""
    with platform_of(request).engine.connect() as connection:
        users = list_users(connection, auth.study_id)
    return {
        "study_id": auth.study_id,
        "users": [
            {
                "username": user.username,
                "display_name": user.display_name,
                "disabled": user.disabled,
                "second_factor": user.totp,
                "roles": [{"role": g.role.value, "sites": sorted(g.sites)} for g in grants],
            }
            for user, grants in users
        ],
    }
