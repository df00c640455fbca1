"""RFC 9457 problem details for every error the API returns: a `type`, a `title`, the `status`, and the field.

Each TrialStack error class maps to one HTTP status; request bodies that do not parse become 422 with the
offending field in JSON-pointer-like dotted form (`items.SYSBP.value`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound, TrialStackError
from trialstack.identity.policy import Forbidden
from trialstack.ledger.errors import ConcurrencyConflict, DatabaseUnavailable, NonCanonicalPayload

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://trialstack.dev/problems/"

STATUS: list[tuple[type[TrialStackError], int, str]] = [
    (InvalidInput, 422, "Invalid input"),
    (NonCanonicalPayload, 422, "Invalid input"),
    (NotFound, 404, "Not found"),
    (Forbidden, 403, "Forbidden"),
    (ConcurrencyConflict, 409, "Conflict"),
    (DomainRuleViolation, 409, "Not allowed in the current state"),
    (DatabaseUnavailable, 503, "Database unavailable"),
]


class PreconditionFailed(TrialStackError):
    """An If-Match header named a version the resource is no longer at."""

    code = "precondition-failed"


STATUS.insert(0, (PreconditionFailed, 412, "Precondition failed"))


def problem(status: int, title: str, detail: str, code: str, field: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def status_of(error: TrialStackError) -> tuple[int, str]:
    for kind, status, title in STATUS:
        if isinstance(error, kind):
            return status, title
    return 400, "Bad request"


async def _trialstack_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, TrialStackError):
        raise error
    status, title = status_of(error)
    return problem(status, title, error.message, error.code, error.field)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    errors = error.errors() if isinstance(error, RequestValidationError) else []
    first = errors[0] if errors else {"loc": (), "msg": str(error)}
    if first.get("type") == "json_invalid":
        # loc is ("body", character offset); say where in the body, and name the body as the field
        context = first.get("ctx")
        reason = (context.get("error") if isinstance(context, dict) else None) or first.get("msg")
        offset = next((part for part in first.get("loc", ()) if isinstance(part, int)), None)
        where = f" at character {offset + 1}" if offset is not None else ""
        detail = f"body: not valid JSON{where}: {reason}"
        return problem(
            422, "Invalid input", detail, "invalid-input", "body", errors=[{"field": "body", "reason": detail}]
        )
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or None
    detail = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
    invalid = [
        {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "reason": e.get("msg")} for e in errors
    ]
    return problem(422, "Invalid input", detail, "invalid-input", field, errors=invalid)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, StarletteHTTPException):
        raise error
    response = problem(error.status_code, str(error.detail), str(error.detail), f"http-{error.status_code}")
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    if error.status_code == 405:
        # Starlette names the methods of the first route whose path matched; a path may have one route per method.
        methods = allowed_methods(request.app, request.scope["path"])
        if methods:
            response.headers["Allow"] = ", ".join(methods)
    return response


def _routes(app: FastAPI) -> Iterator[tuple[str, frozenset[str]]]:
    """(path template, methods) of every route, included routers flattened (see security._api_routes)."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterator[Any] = iterate(app.routes) if iterate is not None else iter(app.routes)
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path is not None and methods:
            yield str(path), frozenset(methods)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route accepts at `path` (a path template may have one route per method)."""
    methods: set[str] = set()
    for template, accepted in _routes(app):
        pattern: re.Pattern[str] = compile_path(template)[0]
        if pattern.match(path):
            methods |= accepted
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TrialStackError, _trialstack_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
