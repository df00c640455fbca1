"""Subjects: the list with each subject's visit summary, screening a new subject, and one casebook's matrix."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from trialstack.api.access import actor_for, visible_sites
from trialstack.api.platform import platform_of, study_rules_of
from trialstack.api.routes_capture import render_outcome
from trialstack.api.schemas import ScreenRequest
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture import status_readmodel as status
from trialstack.capture.readmodel import latest_signature
from trialstack.errors import TrialStackError
from trialstack.identity.policy import Action, Principal, authorize
from trialstack.queries.readmodel import counts_by_form, list_queries
from trialstack.web.forms import errors_of, text
from trialstack.web.grid import build_grid, next_log_record, visit_summaries
from trialstack.web.loaders import load_subject, today
from trialstack.web.paging import PageNumber, Paging
from trialstack.web.routing import redirect, web_router
from trialstack.web.run import run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import can, page

router = web_router(prefix="/studies/{study_id}/subjects")
DONE = {
    "enrol": "Subject enrolled.",
    "screen-failure": "Screen failure recorded.",
    "lock": "Casebook locked.",
    "unlock": "Casebook unlocked.",
}
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]


def _screening_sites(principal: Principal, study_id: str, sites: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(site, name) for site, name in sites if can(principal, Action.SUBJECT_SCREEN, study_id, site)]


def _list_context(request: Request, principal: Principal, study_id: str, page_number: int = 1) -> dict[str, Any]:
    """One page of subjects at the user's sites, each with its visits: a few rows from capture's casebook status
    read model and one grouped count from the queries read model, never a casebook fold."""
    day = today(request)
    sites = visible_sites(principal, study_id)
    with platform_of(request).engine.connect() as connection:
        rules = study_rules_of(connection, study_id)
        paging = Paging.of(page_number, status.count_subjects(connection, study_id, sites))
        subjects = status.subject_page(connection, study_id, sites, offset=paging.offset, limit=paging.size)
        ids = [subject["subject_id"] for subject in subjects]
        visits = status.visits_of(connection, study_id, ids, scheduled_only=True)
        open_queries = counts_by_form(connection, study_id, ids)
    rows = []
    for subject in subjects:
        mine = {form: n for (subject_id, form), n in open_queries.items() if subject_id == subject["subject_id"]}
        summaries = visit_summaries(visits[subject["subject_id"]], mine, rules, day)
        rows.append({"subject": subject, "visits": summaries, "open_queries": sum(mine.values())})
    all_sites = [(site.id, site.name) for site in rules.definition.sites]
    return {
        "rows": rows,
        "paging": paging,
        "visits": [v for v in rules.definition.schedule.visits if not v.repeating],
        "screen_sites": _screening_sites(principal, study_id, all_sites),
        "today": day.isoformat(),
    }


@router.get("")
def subjects_page(study_id: str, request: Request, principal: User, page_number: PageNumber = 1) -> Response:
    """The subjects at the user's sites, a page at a time, with a one-line visit matrix; screening for site staff."""
    authorize(principal, Action.SUBJECT_READ, study_id)
    context = {**_list_context(request, principal, study_id, page_number), "errors": {}, "values": {}}
    return page(request, "subjects.html", context, principal=principal, study_id=study_id)


@router.post("")
def screen_subject(study_id: str, request: Request, principal: User, form: Posted) -> Response:
    """Screen a new subject (ScreenSubject through the API's executor), then open the new casebook."""
    values = {"site_id": text(form, "site_id") or "", "screened_on": text(form, "screened_on") or ""}
    try:
        body = ScreenRequest(**values)
        grant = authorize(principal, Action.SUBJECT_SCREEN, study_id, body.site_id)
        command = cmd.ScreenSubject(body.site_id, body.screened_on)
        outcome = run(
            request,
            actor_for(principal, grant),
            body,
            lambda uow: handlers.screen_subject(uow, study_id, command),
            render_outcome(201),
        )
    except (ValidationError, TrialStackError) as error:
        context = {**_list_context(request, principal, study_id), "errors": errors_of(error), "values": values}
        return page(request, "_screen_form.html", context, principal=principal, study_id=study_id, status_code=422)
    return redirect(request, f"/studies/{study_id}/subjects/{outcome['subject_id']}?screened=1")


@router.get("/{subject_id}")
def casebook_page(
    study_id: str, subject_id: str, request: Request, principal: User, screened: int = 0, done: str | None = None
) -> Response:
    """One subject: visits × forms with status, queries, SDV, freeze and lock; the signature; log forms."""
    loaded = load_subject(request, principal, study_id, subject_id, Action.SUBJECT_READ)
    with platform_of(request).engine.connect() as connection:
        queries = list_queries(connection, study_id, subject_id=subject_id)
        signature = latest_signature(connection, study_id, subject_id)
    grid = build_grid(loaded.rules, loaded.casebook, queries, today(request))
    logs = [(f, next_log_record(grid, f)) for f in loaded.rules.definition.schedule.log_forms]
    context = {
        "subject": loaded.subject,
        "casebook": loaded.casebook,
        "site_id": loaded.site_id,
        "grid": grid,
        "log_forms": [
            (f, loaded.rules.definition.form(f), key, [c for c in grid.log_forms if c.form.split(".")[0] == f])
            for f, key in logs
        ],
        "signature": signature,
        "open_queries": sum(1 for q in queries if q["status"] == "open"),
        "screened": screened,
        "done": DONE.get(done or ""),
        "today": today(request).isoformat(),
    }
    return page(request, "casebook.html", context, principal=principal, study_id=study_id)
