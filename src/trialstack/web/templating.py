"""Jinja2 rendering: one environment, the context every page shares, and the few display filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from trialstack.identity.policy import PERMISSIONS, Action, Principal, Role
from trialstack.web.session import csrf_token_for

TEMPLATES = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES)

ROLE_LABELS = {
    Role.INVESTIGATOR: "Investigator",
    Role.STUDY_COORDINATOR: "Study coordinator",
    Role.MONITOR: "Monitor (CRA)",
    Role.DATA_MANAGER: "Data manager",
    Role.MEDICAL_MONITOR: "Medical monitor",
    Role.SAFETY: "Safety",
    Role.SPONSOR_VIEWER: "Sponsor viewer",
    Role.UNBLINDED_PHARMACIST: "Unblinded pharmacist",
    Role.STUDY_BUILDER: "Study builder",
    Role.ADMIN: "Administrator",
    Role.PARTICIPANT: "Participant",
}
STATUS_LABELS = {
    "not_started": "Not started",
    "in_progress": "In progress",
    "complete": "Complete",
    "screening": "Screening",
    "enrolled": "Enrolled",
    "screen_failed": "Screen failed",
    "withdrawn": "Withdrawn",
    "completed": "Completed",
    "open": "Open",
    "answered": "Answered",
    "closed": "Closed",
    "cancelled": "Cancelled",
}
STATUS_SYMBOLS = {"not_started": "○", "in_progress": "◐", "complete": "●"}


def can(principal: Principal | None, action: Action | str, study_id: str, site_id: str | None = None) -> bool:
    """Whether any grant of the principal allows `action` in the study (at the site, when one is named)."""
    if principal is None:
        return False
    wanted = Action(action)
    return any(wanted in PERMISSIONS[g.role] and g.covers_site(site_id) for g in principal.grants_in(study_id))


def role_names(principal: Principal | None, study_id: str | None) -> list[str]:
    if principal is None or study_id is None:
        return []
    return sorted({ROLE_LABELS[g.role] for g in principal.grants_in(study_id)})


def age_class(days: int) -> str:
    return "age-old" if days > 14 else ("age-mid" if days > 7 else "")


def short(value: str | None, size: int = 12) -> str:
    return (value or "")[:size]


def when(timestamp: str | None) -> str:
    """A ledger timestamp as `2026-03-02 14:05 UTC`."""
    if not timestamp:
        return ""
    return f"{timestamp[:10]} {timestamp[11:16]} UTC" if len(timestamp) > 10 else timestamp


env = templates.env
env.globals.update(can=can, Action=Action, STATUS_LABELS=STATUS_LABELS, STATUS_SYMBOLS=STATUS_SYMBOLS)
env.filters.update(age_class=age_class, short=short, when=when)


def page(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    study_id: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a template with what every page needs: the user, their roles, the study, the CSRF token."""
    values: dict[str, Any] = {
        "principal": principal,
        "study_id": study_id,
        "roles": role_names(principal, study_id),
        "csrf_token": csrf_token_for(request),
        "is_htmx": request.headers.get("hx-request") == "true",
        "path": request.url.path,
    }
    values.update(context or {})
    return templates.TemplateResponse(request, name, values, status_code=status_code, headers=headers)
