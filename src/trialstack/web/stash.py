"""What was typed when the session ran out: kept in a short-lived signed cookie across the sign-in, then offered
back on the page it came from (pre-filled, never submitted on the user's behalf)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData

from trialstack.api.platform import platform_of
from trialstack.identity.credentials import session_key

STASH_COOKIE = "trialstack_stash"
STASH_MAX_AGE = 15 * 60
MAX_STASH_BYTES = 3800
_SKIPPED = frozenset({"csrf_token", "password", "totp"})


def _serializer(request: Request) -> URLSafeTimedSerializer:
    serializer: URLSafeTimedSerializer | None = getattr(request.app.state, "web_stash_serializer", None)
    if serializer is None:
        serializer = URLSafeTimedSerializer(session_key(platform_of(request).engine), salt="trialstack.web.stash.v1")
        request.app.state.web_stash_serializer = serializer
    return serializer


def local_path(url: str | None) -> str | None:
    """The path and query of a URL when it is a page of this site, else None (no open redirects)."""
    if not url:
        return None
    parts = urlsplit(url)
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def page_of(request: Request) -> str:
    """The page the user was looking at: htmx names it; a plain form posts back to its own page."""
    return local_path(request.headers.get("hx-current-url")) or local_path(str(request.url)) or "/"


def stash_form(request: Request, response: Response, form: FormData, page: str) -> None:
    """Keep the typed fields (never secrets) for `page`; silently skipped when too large for a cookie."""
    fields = [[key, value] for key, value in form.multi_items() if isinstance(value, str) and key not in _SKIPPED]
    if not fields:
        return
    token = _serializer(request).dumps({"page": page.split("?")[0], "fields": fields})
    if len(token) <= MAX_STASH_BYTES:
        response.set_cookie(STASH_COOKIE, token, max_age=STASH_MAX_AGE, httponly=True, samesite="lax", path="/")


def read_stash(request: Request) -> dict[str, list[str]] | None:
    """The fields stashed for this page, or None; the page then calls `forget_stash` on its response."""
    token = request.cookies.get(STASH_COOKIE)
    if not token:
        return None
    try:
        data = _serializer(request).loads(token, max_age=STASH_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("page") != request.url.path:
        return None
    fields: dict[str, list[str]] = {}
    for key, value in data.get("fields", []):
        fields.setdefault(str(key), []).append(str(value))
    return fields


def forget_stash(request: Request, response: Response) -> None:
    if request.cookies.get(STASH_COOKIE):
        response.delete_cookie(STASH_COOKIE, path="/")
