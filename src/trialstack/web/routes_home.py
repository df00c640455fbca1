"""Landing pages: the studies a user works in, and each study's home ("what needs my attention")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from trialstack.api.access import visible_sites
from trialstack.api.platform import platform_of
from trialstack.ecoa.readmodel import open_alerts
from trialstack.identity.policy import Action, Forbidden, Principal, authorize
from trialstack.protocol.readmodel import list_versions
from trialstack.web.attention import attention
from trialstack.web.loaders import load_rules, today
from trialstack.web.routing import redirect, web_router
from trialstack.web.session import current_user
from trialstack.web.templating import page

router = web_router()
User = Annotated[Principal, Depends(current_user)]


def _studies(request: Request, principal: Principal) -> list[dict[str, str | bool]]:
    held = sorted({grant.study_id for grant in principal.grants})
    with platform_of(request).engine.connect() as connection:
        loaded = {v.study_id: v for v in list_versions(connection) if v.in_force}
    return [
        {
            "study_id": study_id,
            "loaded": study_id in loaded,
            "protocol_version": loaded[study_id].protocol_version if study_id in loaded else "",
            "version_hash": loaded[study_id].version_hash if study_id in loaded else "",
        }
        for study_id in held
    ]


@router.get("/")
def root(request: Request, principal: User) -> Response:
    """Straight to the study home when the user works in one study; else the list (participants: their app)."""
    if any(grant.subject_id for grant in principal.grants):
        return redirect(request, "/participant")
    studies = _studies(request, principal)
    if len(studies) == 1:
        return redirect(request, f"/studies/{studies[0]['study_id']}")
    return redirect(request, "/studies")


@router.get("/studies")
def studies_page(request: Request, principal: User) -> Response:
    """Every study the user holds a role in."""
    return page(request, "studies.html", {"studies": _studies(request, principal)}, principal=principal)


@router.get("/studies/{study_id}")
def study_home(study_id: str, request: Request, principal: User) -> Response:
    """The user's work lists in this study: queries, overdue visits, forms to verify or sign."""
    authorize(principal, Action.STUDY_READ, study_id)
    platform = platform_of(request)
    if not _loaded(request, study_id):
        return page(request, "home.html", {"loaded": False, "work": None}, principal=principal, study_id=study_id)
    rules = load_rules(request, study_id)
    with platform.engine.connect() as connection:
        work = attention(connection, principal, study_id, today(request))
        ecoa = _ecoa_alerts(connection, principal, study_id)
    context = {"loaded": True, "work": work, "definition": rules.definition, "today": today(request), "ecoa": ecoa}
    return page(request, "home.html", context, principal=principal, study_id=study_id)


def _ecoa_alerts(connection: Connection, principal: Principal, study_id: str) -> dict[str, Any] | None:
    """Open eCOA alerts at the user's sites (missed entries, compliance, clinical), for roles with ECOA_READ."""
    try:
        authorize(principal, Action.ECOA_READ, study_id)
    except Forbidden:
        return None
    rows = open_alerts(connection, study_id, visible_sites(principal, study_id))
    return {"total": len(rows), "rows": rows[:8]}


def _loaded(request: Request, study_id: str) -> bool:
    with platform_of(request).engine.connect() as connection:
        return any(v.in_force and v.study_id == study_id for v in list_versions(connection, study_id))
