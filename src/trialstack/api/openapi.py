"""What the OpenAPI document says about errors.

Every error the API sends is an RFC 9457 problem (`application/problem+json`, see problems.py). The document
declares them: `problem_responses(401, 403, ...)` is the `responses=` of a router or route, each status with the
`Problem` schema under that content type, and `install_openapi(app)` adds the schema to the components. A client
or a fuzzer reading `/openapi.json` then knows every answer it can get.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from trialstack.api.problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `field` names the offending input when there is one.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem (machine-readable)"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "The offending field, header or parameter"},
        "errors": {
            "type": "array",
            "description": "Every invalid field of a request that did not parse",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}
DESCRIPTIONS = {
    400: "The request is malformed (a body that is not UTF-8 JSON or is nested too deeply, an unusable header)",
    401: "Not authenticated: no, an invalid or an expired credential",
    403: "Authenticated, but the role, site or blinding does not allow it (or a missing CSRF token)",
    404: "The study, subject or query does not exist where the user may see it",
    409: "Not allowed in the current state, or a concurrent change won",
    412: "If-Match named a version the subject is no longer at",
    413: "The request body is larger than the API reads",
    422: "The input does not parse or does not fit its declared type; `field` names it",
    429: "Too many sign-in attempts; retry after the Retry-After header",
    503: "The database does not answer",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or route: each status as a problem+json answer with the Problem schema."""
    return {
        status: {
            "description": DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }


# Any authenticated route can answer these; routes that change something add WRITE_ERRORS.
AUTHENTICATED_ERRORS = problem_responses(400, 401, 403, 404, 422, 503)
WRITE_ERRORS = problem_responses(409, 412, 413)


def install_openapi(app: FastAPI) -> None:
    """Add the Problem schema to the document's components (the routes refer to it)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {}).setdefault("Problem", PROBLEM_SCHEMA)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
