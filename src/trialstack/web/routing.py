"""Web routes answer in HTML: a missing session goes to the sign-in page, any TrialStack error becomes a page (or,
for htmx, a message in the page's notice area). The API keeps its problem+json handlers: this is per route."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from trialstack.api.problems import status_of
from trialstack.errors import TrialStackError
from trialstack.identity.model import NotAuthenticated, TooManyAttempts
from trialstack.identity.policy import Forbidden
from trialstack.web.session import LoginRequired
from trialstack.web.stash import page_of, stash_form
from trialstack.web.templating import page

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def redirect(request: Request, url: str) -> Response:
    """Go to `url`: a 303 for the browser, `HX-Redirect` for htmx (which would otherwise swap the target page)."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def login_redirect(request: Request, error: LoginRequired) -> Response:
    """To the sign-in page, back here afterwards; a post's typed fields ride along in the stash cookie."""
    target = page_of(request) if request.method == "POST" else (request.url.path + _query(request))
    reason = "idle" if error.reason == "idle" else "1"
    expired = f"&expired={reason}" if error.expired or request.method == "POST" else ""
    response = redirect(request, f"/login?next={quote(target, safe='/')}{expired}")
    if request.method == "POST":
        stash_form(request, response, await request.form(), target)
    return response


def _query(request: Request) -> str:
    return f"?{request.url.query}" if request.url.query else ""


def error_status(error: TrialStackError) -> tuple[int, str]:
    if isinstance(error, NotAuthenticated):
        return 401, "Not signed in"
    if isinstance(error, Forbidden):
        return 403, "Not allowed"
    if isinstance(error, TooManyAttempts):
        return 429, "Too many attempts"
    return status_of(error)


def error_response(request: Request, status: int, title: str, message: str) -> Response:
    """A full error page, or for htmx the message swapped into the page's notice area."""
    context = {"title": title, "message": message, "status": status}
    if is_htmx(request):
        headers = {"HX-Retarget": "#notices", "HX-Reswap": "innerHTML"}
        return page(request, "_notice.html", context, status_code=status, headers=headers)
    principal = getattr(getattr(request.state, "web_user", None), "principal", None)
    study_id = request.path_params.get("study_id")
    return page(request, "error.html", context, principal=principal, study_id=study_id, status_code=status)


class WebRoute(APIRoute):
    """An APIRoute whose errors are rendered as HTML instead of problem+json."""

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except LoginRequired as error:
                return await login_redirect(request, error)
            except TrialStackError as error:
                status, title = error_status(error)
                return error_response(request, status, title, error.message)
            except RequestValidationError as error:
                first = error.errors()[0] if error.errors() else {"msg": str(error), "loc": ()}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
                return error_response(request, 422, "Invalid input", f"{where}: {first.get('msg')}")

        return handler


def web_router(**kwargs: Any) -> APIRouter:
    """An APIRouter for pages: HTML errors, and no OpenAPI entries (the API documents itself)."""
    return APIRouter(route_class=WebRoute, include_in_schema=False, **kwargs)
