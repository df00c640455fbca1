"""Sign-in and sign-out pages on identity's functions: `login` / `logout` in a unit of work, the API's session
cookie and signer, the app's sign-in throttle (in the database). Nothing here checks a password itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from trialstack.api.platform import platform_of
from trialstack.api.security import CSRF_COOKIE, SESSION_COOKIE, login_throttle, secure_cookies, session_signer
from trialstack.identity.authentication import IDENTITY_SYSTEM, LoginResult, login, logout, user_actor
from trialstack.identity.model import NotAuthenticated, SecondFactorRequired, TooManyAttempts
from trialstack.identity.sessions import SESSION_MAX_AGE, SessionClaim
from trialstack.ledger.errors import ConcurrencyConflict
from trialstack.web.routing import redirect, web_router
from trialstack.web.session import LoginRequired, idle_message, posted_form, session_of
from trialstack.web.stash import local_path
from trialstack.web.templating import page

router = web_router()
MAX_ATTEMPTS = 3


def _next(value: object) -> str:
    """Where to go after signing in: a path of this site (no scheme, no host, no `//`), never the sign-in page."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    target = local_path(value)
    return target if target is not None and not target.startswith("/login") else "/"


def _notice(request: Request, expired: str) -> str | None:
    """Why the user is here again: `expired=idle` after the idle timeout, any other value after a session ended."""
    if expired == "idle":
        return idle_message(platform_of(request).settings.session_idle_minutes)
    if expired and expired != "0":
        return "Your session has ended. Sign in again to continue where you were."
    return None


@router.get("/login")
def login_page(request: Request, next: str = "/", expired: str = "") -> Response:
    """The sign-in form; already signed-in users go straight on."""
    try:
        session_of(request)
        return redirect(request, _next(next))
    except LoginRequired:
        pass
    notice = _notice(request, expired)
    return page(request, "login.html", {"next": _next(next), "notice": notice, "username": ""})


def _sign_in(request: Request, username: str, password: str, totp: str | None) -> LoginResult:
    """identity's `login` in its own unit of work, retried on a concurrent write to the account (as the API does)."""
    platform = platform_of(request)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with platform.unit_of_work(IDENTITY_SYSTEM) as uow:
                result = login(uow, username, password, totp)
                uow.commit()
                return result
        except ConcurrencyConflict:
            if attempt == MAX_ATTEMPTS:
                raise
    raise NotAuthenticated("sign-in did not complete")


@router.post("/login")
async def login_submit(request: Request) -> Response:
    """Check the credentials through identity; a failure is recorded there and answered without detail."""
    form = await request.form()
    username = str(form.get("username") or "").strip().lower()
    password = str(form.get("password") or "")
    totp = str(form.get("totp") or "").strip() or None
    target = _next(form.get("next"))
    address = request.client.host if request.client else "?"
    throttle = login_throttle(request)
    now = platform_of(request).clock.now()
    context = {"next": target, "username": username, "notice": None}
    try:
        await run_in_threadpool(throttle.check, username, address, now)
        result = await run_in_threadpool(_sign_in, request, username, password, totp)
    except SecondFactorRequired:
        return page(request, "login.html", {**context, "need_totp": True, "password": ""}, status_code=401)
    except NotAuthenticated as error:
        await run_in_threadpool(throttle.failed, username, address, now)
        return page(request, "login.html", {**context, "error": error.message}, status_code=401)
    except TooManyAttempts as error:
        return page(request, "login.html", {**context, "error": error.message}, status_code=429)
    await run_in_threadpool(throttle.succeeded, username, address)
    response = redirect(request, target)
    signer = session_signer(request)
    secure, max_age = secure_cookies(request), int(SESSION_MAX_AGE.total_seconds())
    cookie = signer.dumps(SessionClaim(result.session_id, result.principal.username))
    response.set_cookie(SESSION_COOKIE, cookie, max_age=max_age, httponly=True, secure=secure, samesite="lax")
    csrf = signer.csrf_token(result.session_id)
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, secure=secure, samesite="strict")
    return response


def _sign_out(request: Request, username: str, session_id: str) -> None:
    with platform_of(request).unit_of_work(user_actor(username)) as uow:
        logout(uow, session_id)
        uow.commit()


@router.post("/logout")
async def logout_submit(request: Request, form: Annotated[FormData, Depends(posted_form)]) -> Response:
    """End the session in the ledger and drop the cookie."""
    user = session_of(request)
    await run_in_threadpool(_sign_out, request, user.principal.username, user.session_id)
    response = redirect(request, "/login")
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response
