"""Authentication and authorization at the API edge: who is calling, and may they do this here.

- `current_principal(request)`: the Principal behind an `Authorization: Bearer` API token or a signed session
  cookie; cookie-authenticated unsafe methods must echo the CSRF token in `X-CSRF-Token`.
- `requires(Action.X)`: a dependency that authorizes one action on the route's study (and site) *before* the body
  is parsed, and records that action on the route, so `route_actions(app)` can list what every route needs.
- `install_security(app)`: problem+json for 401 / 403 / 429, secure headers, the sign-in throttle.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import fastapi.routing
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from trialstack.api.middleware import SecureHeadersMiddleware, install_log_redaction
from trialstack.api.platform import platform_of
from trialstack.api.problems import install_problem_handlers, problem
from trialstack.identity.authentication import principal_for_token, resume_session
from trialstack.identity.credentials import session_key
from trialstack.identity.model import NotAuthenticated, TooManyAttempts
from trialstack.identity.policy import Action, Forbidden, Grant, Principal, authorize, authorize_study_wide
from trialstack.identity.sessions import SessionSigner
from trialstack.identity.throttle import LoginThrottle
from trialstack.ledger.envelope import Actor

SESSION_COOKIE = "trialstack_session"
CSRF_COOKIE = "trialstack_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRejected(Forbidden):
    code = "csrf-rejected"


@dataclass(frozen=True)
class Authentication:
    principal: Principal
    method: Literal["token", "session"]
    session_id: str | None = None
    token_id: str | None = None


def session_signer(request: Request) -> SessionSigner:
    """The cookie signer of this app, keyed once from TRIALSTACK_SECRET_KEY or the database's own key."""
    signer: SessionSigner | None = getattr(request.app.state, "session_signer", None)
    if signer is None:
        signer = SessionSigner(session_key(platform_of(request).engine))
        request.app.state.session_signer = signer
    return signer


def login_throttle(request: Request) -> LoginThrottle:
    """The sign-in throttle of this app: failures counted in the platform's database, shared by every process."""
    throttle: LoginThrottle | None = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = request.app.state.login_throttle = LoginThrottle(platform_of(request).engine)
    return throttle


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or os.environ.get("TRIALSTACK_SECURE_COOKIES", "") in ("1", "true")


def authentication(request: Request) -> Authentication:
    """Authenticate the request once (cached on `request.state`); NotAuthenticated or CsrfRejected otherwise."""
    cached: Authentication | None = getattr(request.state, "trialstack_auth", None)
    if cached is not None:
        return cached
    platform = platform_of(request)
    header = request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("use `Authorization: Bearer <API token>`")
        with platform.engine.connect() as connection:
            principal, token_id = principal_for_token(connection, token.strip(), platform.clock.now())
        found = Authentication(principal, "token", token_id=token_id)
    elif cookie is not None:
        signer = session_signer(request)
        claim = signer.loads(cookie)
        if claim is None:
            raise NotAuthenticated("the session cookie is invalid or expired; sign in again")
        idle = platform.settings.session_idle_timeout
        principal = resume_session(platform.engine, claim.session_id, claim.username, platform.clock.now(), idle)
        if request.method not in SAFE_METHODS and not signer.csrf_valid(
            claim.session_id, request.headers.get(CSRF_HEADER)
        ):
            raise CsrfRejected(
                f"a {request.method} with a session cookie needs the {CSRF_HEADER} header of the session"
            )
        found = Authentication(principal, "session", session_id=claim.session_id)
    else:
        raise NotAuthenticated("sign in (POST /api/v1/session) or send an API token as a Bearer credential")
    request.state.trialstack_auth = found
    return found


def current_principal(request: Request) -> Principal:
    """The authenticated user (FastAPI dependency): `principal: Principal = Depends(current_principal)`."""
    return authentication(request).principal


def public() -> None:
    """Declares a route that needs no authentication (`dependencies=[PUBLIC]`)."""


PUBLIC = Depends(public)


class StudyWide:
    """`requires(..., site=STUDY_WIDE)`: the grant must cover every site of the study (study-wide exports)."""


STUDY_WIDE = StudyWide()
SiteResolver = Callable[[Request, Principal], str | None]
SiteRule = str | SiteResolver | StudyWide | None


@dataclass(frozen=True)
class Authorized:
    """What `requires` hands a route: who, under which grant, in which study and site."""

    principal: Principal
    action: Action
    study_id: str
    site_id: str | None
    grant: Grant

    @property
    def actor(self) -> Actor:
        """The ledger actor of this request: the user, in the role of the grant that allowed it."""
        return Actor(id=f"user:{self.principal.username}", role=self.grant.role.value)

    @property
    def sites(self) -> frozenset[str] | None:
        """The sites whose data this user may see in the study; None means every site."""
        sites = self.principal.sites_in(self.study_id)
        return None if "*" in sites else sites

    @property
    def unblinded(self) -> bool:
        return self.principal.is_unblinded(self.study_id)

    def at_site(self, site_id: str) -> Authorized:
        """Authorize the same action at a site known only from the body (Forbidden if not granted there)."""
        grant = authorize(self.principal, self.action, self.study_id, site_id)
        return Authorized(self.principal, self.action, self.study_id, site_id, grant)


class RequireAction:
    """The dependency behind `requires`; `route_actions` recognises it on a route."""

    def __init__(self, action: Action, study: str, site: SiteRule) -> None:
        self.action = action
        self.study = study
        self.site = site

    def __call__(self, request: Request) -> Authorized:
        principal = current_principal(request)
        study_id = request.path_params.get(self.study)
        if study_id is None:
            raise LookupError(f"route {request.url.path} has no path parameter {{{self.study}}} for its study")
        grant = authorize(principal, self.action, study_id)
        site_id: str | None = None
        if isinstance(self.site, str):
            site_id = request.path_params[self.site]
        elif isinstance(self.site, StudyWide):
            grant = authorize_study_wide(principal, self.action, study_id)
        elif self.site is not None:
            site_id = self.site(request, principal)
        if site_id is not None:
            grant = authorize(principal, self.action, study_id, site_id)
        return Authorized(principal, self.action, study_id, site_id, grant)


def requires(action: Action, *, study: str = "study_id", site: SiteRule = "site_id") -> Any:
    """Authorize `action` before the route runs and declare it for the route × role matrix.

    `site`: the name of the site path parameter (default `site_id`); a resolver `(request, principal) -> site`
    (e.g. the subject's site); `None` when the route is study-level or narrows to a site from the body with
    `auth.at_site(body.site_id)`; `STUDY_WIDE` when the grant must cover every site.
    """
    return Depends(RequireAction(action, study, site))


@dataclass(frozen=True)
class RouteAccess:
    method: str
    path: str
    actions: tuple[RequireAction, ...]
    public: bool
    authenticated: bool

    @property
    def declared(self) -> bool:
        return self.public or bool(self.actions)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _api_routes(app: FastAPI) -> Iterator[tuple[str, set[str], Dependant]]:
    """(path, methods, dependant) of every API route, included routers flattened (FastAPI ≥ 0.16x keeps included
    routers as nodes in `app.routes`; `iter_route_contexts` resolves their prefixes and dependencies)."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    if iterate is None:
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path, set(route.methods or ()), route.dependant
        return
    for context in iterate(app.routes):
        if isinstance(context.original_route, APIRoute) and context.dependant is not None:
            yield str(context.path), set(context.methods or ()), context.dependant


def route_actions(app: FastAPI, prefix: str = "/api/v1") -> list[RouteAccess]:
    """What every route under `prefix` declares: its actions (`requires`), `PUBLIC`, or only a principal."""
    found: list[RouteAccess] = []
    for path, methods, dependant in _api_routes(app):
        if not path.startswith(prefix):
            continue
        calls = list(_calls(dependant))
        actions = tuple(call for call in calls if isinstance(call, RequireAction))
        signed_in = bool(actions) or bool({current_principal, authentication} & set(calls))
        found.extend(RouteAccess(method, path, actions, public in calls, signed_in) for method in sorted(methods))
    return found


def declaration_problems(access: RouteAccess) -> list[str]:
    """Mismatches between a route's path and what its `requires` reads from it (found before any request)."""
    problems = []
    for need in access.actions:
        for name in (need.study, need.site if isinstance(need.site, str) else None):
            if name is not None and f"{{{name}}}" not in access.path:
                problems.append(f"{access.method} {access.path}: requires({need.action}) reads {{{name}}}")
    return problems


async def _not_authenticated(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, NotAuthenticated):
        raise error
    response = problem(401, "Not authenticated", error.message, error.code, error.field)
    response.headers["WWW-Authenticate"] = 'Bearer realm="trialstack"'
    return response


async def _forbidden(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, Forbidden):
        raise error
    return problem(403, "Forbidden", error.message, error.code, error.field)


async def _too_many(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, TooManyAttempts):
        raise error
    response = problem(429, "Too many attempts", error.message, error.code)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def install_security(app: FastAPI) -> None:
    """Every error as problem+json (401 with WWW-Authenticate, 403, 429 with Retry-After, and the rest through
    `install_problem_handlers`), secure headers, log redaction, and the sign-in throttle (in the database of
    `app.state.platform`, which must be set first)."""
    install_problem_handlers(app)
    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(TooManyAttempts, _too_many)
    app.add_middleware(SecureHeadersMiddleware)
    app.state.login_throttle = LoginThrottle(app.state.platform.engine)
    install_log_redaction()
