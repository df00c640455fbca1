"""The study dashboard: KRIs per role (sponsor, monitor and CRO lead, data management) with charts drawn by the
vendored Chart.js, updated live, every figure drilling down to the subjects, queries, forms or sites behind it.

Live: the page listens to `…/dashboard/live` (server-sent events), which says `kris` whenever the study's KRI read
model moves (ops folds no blinded event, so neither does this signal); `static/dashboard.js` then fetches
`…/dashboard/figures` and swaps it in, without a reload. These two read the session without counting as activity:
an open dashboard does not keep an idle session alive, and once it has expired they answer 401 and the page says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from trialstack.api.access import visible_sites
from trialstack.api.platform import platform_of
from trialstack.api.routes_kris import definition_of
from trialstack.api.security import SESSION_COOKIE, session_signer
from trialstack.identity.authentication import principal_for_session
from trialstack.identity.model import NotAuthenticated
from trialstack.identity.policy import Action, Principal, authorize
from trialstack.ops.drilldown import kri_id, kri_rows
from trialstack.ops.figures import kri_report, last_seq
from trialstack.web.dashboard import VIEWS, charts, columns_of, default_view, view_kris
from trialstack.web.routing import web_router
from trialstack.web.session import current_user
from trialstack.web.templating import page

router = web_router(prefix="/studies/{study_id}/dashboard")
User = Annotated[Principal, Depends(current_user)]
POLL_SECONDS = 1.0
SSE = "text/event-stream"


def quiet_user(request: Request) -> Principal:
    """The signed-in principal without recording activity (NotAuthenticated when the session ended or is idle)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    claim = session_signer(request).loads(cookie) if cookie else None
    if claim is None:
        raise NotAuthenticated("sign in again")
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        principal, _ = principal_for_session(
            connection, claim.session_id, claim.username, platform.clock.now(), platform.settings.session_idle_timeout
        )
    return principal


Quiet = Annotated[Principal, Depends(quiet_user)]


def _context(request: Request, principal: Principal, study_id: str, view: str | None) -> dict[str, Any]:
    authorize(principal, Action.KRI_READ, study_id)
    chosen = view if view in VIEWS else default_view(principal, study_id)
    platform, sites = platform_of(request), visible_sites(principal, study_id)
    with platform.engine.connect() as connection:
        definition = definition_of(connection, study_id)
        report = kri_report(connection, definition, study_id, platform.clock.now().date(), sites)
    built = charts(report, chosen)
    names = {site.id: site.name for site in definition.sites}
    return {"report": report, "view": chosen, "views": VIEWS, "kris": view_kris(report, chosen), "charts": built,
            "charts_json": json.dumps(built), "site_names": names,
            "totals": _totals(report)}  # fmt: skip


def _totals(report: dict[str, Any]) -> dict[str, Any]:
    study = {kri["kri"]: kri["study"] for kri in report["kris"]}
    return {"screened": report["screened"], "enrolled": report["enrolled"],
            "open_queries": study["OPEN_QUERIES"]["value"], "sdv_backlog": study["SDV_BACKLOG"]["value"],
            "statuses": [row["status"] for kri in report["kris"] for row in kri["sites"]]}  # fmt: skip


@router.get("")
def dashboard(study_id: str, request: Request, principal: User, view: str | None = None) -> Response:
    """The KRIs of the user's view (or `view`), charts and a status table, live."""
    context = _context(request, principal, study_id, view)
    return page(request, "dashboard/page.html", context, principal=principal, study_id=study_id)


@router.get("/figures")
def figures(study_id: str, request: Request, principal: Quiet, view: str | None = None) -> Response:
    """The figures fragment the page swaps in when the live signal says the KRIs moved."""
    context = _context(request, principal, study_id, view)
    return page(request, "dashboard/_figures.html", context, principal=principal, study_id=study_id)


@router.get("/live")
async def live(
    study_id: str,
    request: Request,
    principal: Quiet,
    after: Annotated[int, Query(ge=0)] = 0,
    max_seconds: Annotated[float, Query(ge=0, le=3600)] = 55.0,
) -> StreamingResponse:
    """Server-sent events: `kris` (id: the read model's position) each time the study's KRI read model moves after
    `after` (or Last-Event-ID); the stream ends after `max_seconds` and the browser reconnects on its own."""
    authorize(principal, Action.KRI_READ, study_id)
    last_id = request.headers.get("last-event-id", "")
    position = int(last_id) if last_id.isascii() and last_id.isdigit() else after
    engine = platform_of(request).engine

    def read() -> int:
        with engine.connect() as connection:
            return last_seq(connection, study_id)

    async def events() -> AsyncIterator[str]:
        nonlocal position
        yield "retry: 2000\n\n"
        deadline = asyncio.get_running_loop().time() + max_seconds
        while not await request.is_disconnected():
            current = await run_in_threadpool(read)
            if current != position:
                position = current
                yield f"id: {current}\nevent: kris\ndata: {json.dumps({'seq': current})}\n\n"
            if asyncio.get_running_loop().time() >= deadline:
                return
            yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(events(), media_type=SSE, headers={"Cache-Control": "no-cache"})


@router.get("/kris/{kri}")
def drill_down(study_id: str, kri: str, request: Request, principal: User, site: str | None = None) -> Response:
    """The rows behind a KRI (one site's with `site`): subjects, queries, forms, visits, checks or kits."""
    chosen = kri_id(kri)
    authorize(principal, Action.KRI_READ, study_id, site)
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        definition = definition_of(connection, study_id)
        rows = kri_rows(connection, definition, study_id, chosen, platform.clock.now().date(),
                        visible_sites(principal, study_id), site)  # fmt: skip
    context = {"drill": rows, "columns": columns_of(rows["rows"]), "site": site}
    return page(request, "dashboard/kri.html", context, principal=principal, study_id=study_id)
