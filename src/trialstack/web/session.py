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
from trialstack.identity.authentication import SessionExpired, resume_session
from trialstack.identity.model import NotAuthenticated
from trialstack.identity.policy import Forbidden, Principal

CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No usable session: the page sends the browser to the sign-in page (and keeps what was typed).

    `reason` tells the sign-in page what to say: `ended` (signed out, disabled, cookie too old or forged) or
    `idle` (no activity for the idle timeout).
    """

    def __init__(self, message: str, *, expired: bool = True, reason: str = "ended") -> None:
        super().__init__(message)
        self.message = message
        self.expired = expired
        self.reason = reason


class CsrfRejected(Forbidden):
    code = "csrf-rejected"


def idle_message(minutes: int) -> str:
    unit = "minute" if minutes == 1 else "minutes"
    return f"You were signed out after {minutes} {unit} without activity. Sign in again to continue where you were."


@dataclass(frozen=True)
class WebUser:
    principal: Principal
    session_id: str


def session_of(request: Request) -> WebUser:
    """The signed-in user of this request; LoginRequired when the cookie is missing, forged, old or ended, or the
    session has been idle too long. A request that passes counts as activity and extends the session."""
    cached: WebUser | None = getattr(request.state, "web_user", None)
    if cached is not None:
        return cached
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise LoginRequired("Please sign in.", expired=False)
    claim = session_signer(request).loads(cookie)
    if claim is None:
        raise LoginRequired("Your session has expired. Please sign in again.")
    platform = platform_of(request)
    idle = platform.settings.session_idle_timeout
    try:
        principal = resume_session(platform.engine, claim.session_id, claim.username, platform.clock.now(), idle)
    except SessionExpired:
        raise LoginRequired(idle_message(platform.settings.session_idle_minutes), reason="idle") from None
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
