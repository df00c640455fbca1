"""Who is using the web app: identity's signed session cookie and its CSRF token, read the way the API reads them.

The API's `authentication` wants the CSRF token in the `X-CSRF-Token` header; pages also post plain HTML forms,
so here the token may come as the `csrf_token` field too. Nothing else differs: the same cookie, the same
signer, the same session read model (`principal_for_session`), so one sign-in serves the pages and the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from trialstack.api.platform import platform_of
from trialstack.api.security import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, session_signer
from trialstack.identity.authentication import principal_for_session
from trialstack.identity.model import NotAuthenticated
from trialstack.identity.policy import Forbidden, Principal

CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No usable session: the page sends the browser to the sign-in page (and keeps what was typed)."""

    def __init__(self, message: str, *, expired: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.expired = expired


class CsrfRejected(Forbidden):
    code = "csrf-rejected"


@dataclass(frozen=True)
class WebUser:
    principal: Principal
    session_id: str


def session_of(request: Request) -> WebUser:
    """The signed-in user of this request; LoginRequired when the cookie is missing, forged, old or ended."""
    cached: WebUser | None = getattr(request.state, "web_user", None)
    if cached is not None:
        return cached
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise LoginRequired("Please sign in.", expired=False)
    claim = session_signer(request).loads(cookie)
    if claim is None:
        raise LoginRequired("Your session has expired. Please sign in again.")
    try:
        with platform_of(request).engine.connect() as connection:
            principal = principal_for_session(connection, claim.session_id, claim.username)
    except NotAuthenticated:
        raise LoginRequired("Your session has ended. Please sign in again.") from None
    user = WebUser(principal, claim.session_id)
    request.state.web_user = user
    return user


def current_user(request: Request) -> Principal:
    """FastAPI dependency for pages: the signed-in principal (reads never need the CSRF token)."""
    return session_of(request).principal


async def posted_form(request: Request, principal: Annotated[Principal, Depends(current_user)]) -> FormData:
    """FastAPI dependency for posts: the signed-in user's form, after checking its CSRF token."""
    user = session_of(request)
    form = await request.form()
    if request.method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        token = presented if isinstance(presented, str) else None
        if not session_signer(request).csrf_valid(user.session_id, token):
            raise CsrfRejected("This form is out of date (security token mismatch). Reload the page and try again.")
    return form


def csrf_token_for(request: Request) -> str:
    """The CSRF token of the request's session, or empty when nobody is signed in."""
    try:
        user = session_of(request)
    except LoginRequired:
        return ""
    return session_signer(request).csrf_token(user.session_id)
