"""Laboratory pages on labs' handlers and read model: a subject's results (table and charts), the data manager's
triage queue of results no subject or visit could be matched to, and the investigator's lab alerts.

The subject page needs `lab.read` at the subject's site; the alerts page `lab.read` and lists only the user's
sites, confirming or dismissing needs `lab.alert.review` at the alert's site; triage needs `lab.triage` (data
managers, every site). Templates hold no rule: flags, grades and alerts are labs' decisions, shown as stored.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection
from starlette.datastructures import FormData

from trialstack.api.access import actor_for
from trialstack.api.platform import platform_of
from trialstack.capture.readmodel import list_subjects
from trialstack.errors import InvalidInput, NotFound, TrialStackError
from trialstack.identity.policy import Action, Principal, authorize
from trialstack.labs import commands as cmd
from trialstack.labs import handlers as labs
from trialstack.labs import readmodel as rm
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import StudyDefinition
from trialstack.web.forms import errors_of, text
from trialstack.web.loaders import authorize_staff_on_subject
from trialstack.web.routes_irt import definition_of, sites_allowing
from trialstack.web.routing import redirect, web_router
from trialstack.web.run import event_summary, run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import page

router = web_router(prefix="/studies/{study_id}")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]
FLAG_LABELS = {"L": "Low", "H": "High", "LL": "Critically low", "HH": "Critically high"}
TRIAGE_DONE = {
    "assigned": "Result assigned: it is now on the subject's laboratory page.",
    "rejected": "Result rejected: it stays out of the study, with your reason.",
}
ALERT_DONE = {
    "confirmed": "Alert confirmed: the adverse event is recorded for the subject.",
    "dismissed": "Alert dismissed, with your reason.",
}


def _number(value: str | None) -> float | None:
    """A stored decimal as a chart coordinate (None when the value is not a number)."""
    if value is None:
        return None
    try:
        return float(Decimal(value))
    except (InvalidOperation, ValueError):
        return None


def _visit_names(definition: StudyDefinition) -> dict[str, str]:
    return {visit.id: visit.name for visit in definition.schedule.visits}


# --- a subject's laboratory page ----------------------------------------------------------------------------------


def _chart(test_id: str, name: str, unit: str, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One numeric test's series for static/labs.js: a point per result, the range as low/high per point (the
    range may differ between results), the flag for each point's colour. None without a numeric value."""
    points = [
        {"x": (row["collected_at"] or "")[:16].replace("T", " "), "y": _number(row["value"]), "flag": row["flag"],
         "low": _number(row["low"]), "high": _number(row["high"])}
        for row in rows if row["is_numeric"] and _number(row["value"]) is not None
    ]  # fmt: skip
    if not points:
        return None
    return {"test": test_id, "label": f"{name} ({unit})", "points": points}


def _subject_context(connection: Connection, study_id: str, subject_id: str) -> dict[str, Any]:
    definition = definition_of(connection, study_id)
    results = rm.results_of_subject(connection, study_id, subject_id)
    declared = definition.labs.tests if definition.labs is not None else ()
    order = [test.id for test in declared] + sorted({r["test"] for r in results} - {t.id for t in declared})
    names = {test.id: test.name for test in declared}
    units = {test.id: test.unit for test in declared}
    tables: list[dict[str, Any]] = []
    charts: list[dict[str, Any]] = []
    for test_id in order:
        rows = [row for row in results if row["test"] == test_id]
        if not rows:
            continue
        name = names.get(test_id) or test_id
        tables.append({"test": test_id, "name": name, "rows": rows})
        chart = _chart(test_id, name, units.get(test_id) or rows[0]["unit"] or "", rows)
        if chart is not None:
            charts.append(chart)
    return {
        "subject_id": subject_id,
        "tables": tables,
        "charts": charts,
        "visits": _visit_names(definition),
        "flag_labels": FLAG_LABELS,
        "declares_labs": definition.labs is not None,
    }


@router.get("/subjects/{subject_id}/labs")
def subject_labs(study_id: str, subject_id: str, request: Request, principal: User) -> Response:
    """Every result of the subject per test, as labs graded it, with a chart of each numeric test over time."""
    _, site_id = authorize_staff_on_subject(request, principal, Action.LAB_READ, study_id, subject_id)
    with platform_of(request).engine.connect() as connection:
        context = {**_subject_context(connection, study_id, subject_id), "site_id": site_id}
    return page(request, "labs/subject.html", context, principal=principal, study_id=study_id)


# --- the triage queue ---------------------------------------------------------------------------------------------


def _triage_context(request: Request, study_id: str, tab: str) -> dict[str, Any]:
    with platform_of(request).engine.connect() as connection:
        definition = definition_of(connection, study_id)
        every = [
            {**i, "candidates": json.loads(i["candidates"] or "[]")}
            for i in rm.triage_items(connection, study_id, None)
        ]
        subjects = [row["subject_id"] for row in list_subjects(connection, study_id)]
    return {
        "tab": "resolved" if tab == "resolved" else "open",
        "items": [i for i in every if i["status"] == "open"],
        "resolved": [i for i in reversed(every) if i["status"] != "open"],
        "subjects": subjects,
        "visits": _visit_names(definition),
        "errors": {},
        "failed": None,
        "values": {},
        "done": None,
    }


@router.get("/labs/triage")
def triage_page(study_id: str, request: Request, principal: User, tab: str = "open", done: str = "") -> Response:
    """The results waiting for a data manager: who they may belong to, and why they were not matched."""
    authorize(principal, Action.LAB_TRIAGE, study_id)
    context = {**_triage_context(request, study_id, tab), "done": TRIAGE_DONE.get(done)}
    return page(request, "labs/triage.html", context, principal=principal, study_id=study_id)


def _triage_refused(
    request: Request, principal: Principal, study_id: str, triage_id: str, action: str, error: TrialStackError,
    values: dict[str, str],
) -> Response:  # fmt: skip
    """The queue again, the refused item's form with its message and what was typed (nothing was written)."""
    context = _triage_context(request, study_id, "open")
    context.update(errors=errors_of(error), failed=f"{action}:{triage_id}", values=values)
    return page(request, "labs/triage.html", context, principal=principal, study_id=study_id, status_code=422)


@router.post("/labs/triage/{triage_id}/assign")
def assign(study_id: str, triage_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Assign a triaged result to a subject (and visit): labs processes it as if it had matched."""
    grant = authorize(principal, Action.LAB_TRIAGE, study_id)
    values = {"subject_id": text(posted, "subject_id") or "", "visit": text(posted, "visit") or "",
              "reason": text(posted, "reason") or "", "remember": text(posted, "remember") or ""}  # fmt: skip
    command = cmd.AssignLabResult(
        triage_id, values["subject_id"], values["visit"] or None, values["remember"] == "yes", values["reason"]
    )

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        if not command.subject_id:
            raise InvalidInput("name the subject the result belongs to", field="subject_id")
        return labs.assign_triaged(uow, study_id, command)

    try:
        run(request, actor_for(principal, grant), None, work, event_summary)
    except TrialStackError as error:
        return _triage_refused(request, principal, study_id, triage_id, "assign", error, values)
    return redirect(request, f"/studies/{study_id}/labs/triage?done=assigned")


@router.post("/labs/triage/{triage_id}/reject")
def reject(study_id: str, triage_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Reject a triaged result (not this study's, a duplicate sample…): the reason is required and kept."""
    grant = authorize(principal, Action.LAB_TRIAGE, study_id)
    command = cmd.RejectLabResult(triage_id, text(posted, "reason") or "")
    try:
        run(request, actor_for(principal, grant), None, lambda uow: labs.reject_triaged(uow, study_id, command),
            event_summary)  # fmt: skip
    except TrialStackError as error:
        return _triage_refused(request, principal, study_id, triage_id, "reject", error, {"reason": command.reason})
    return redirect(request, f"/studies/{study_id}/labs/triage?done=rejected")


# --- lab alerts ---------------------------------------------------------------------------------------------------


def _alerts_context(request: Request, principal: Principal, study_id: str) -> dict[str, Any]:
    with platform_of(request).engine.connect() as connection:
        definition = definition_of(connection, study_id)
        sites = sites_allowing(principal, Action.LAB_READ, study_id, definition)
        rows = rm.alerts(connection, study_id, None, sites)
    names = {test.id: test.name for test in definition.labs.tests} if definition.labs is not None else {}
    return {
        "raised": [row for row in rows if row["status"] == "raised"],
        "decided": [row for row in reversed(rows) if row["status"] != "raised"],
        "names": names,
        "sites": sites,
        "errors": {},
        "failed": None,
        "values": {},
        "done": None,
    }


@router.get("/labs/alerts")
def alerts_page(study_id: str, request: Request, principal: User, done: str = "") -> Response:
    """Values at or above the study's alert grade at the user's sites, each proposing an adverse event."""
    authorize(principal, Action.LAB_READ, study_id)
    context = {**_alerts_context(request, principal, study_id), "done": ALERT_DONE.get(done)}
    return page(request, "labs/alerts.html", context, principal=principal, study_id=study_id)


def _alert_grant_site(request: Request, principal: Principal, study_id: str, alert_id: str) -> str:
    """The alert's site, when the user may review alerts there (an alert at a site they cannot see is NotFound)."""
    with platform_of(request).engine.connect() as connection:
        found = rm.alert(connection, study_id, alert_id)
    if found is None or not _sees(principal, study_id, str(found["site_id"])):
        raise NotFound(f"no lab alert {alert_id} at your sites", field="alert_id")
    return str(found["site_id"])


def _sees(principal: Principal, study_id: str, site_id: str) -> bool:
    return any(g.covers_site(site_id) for g in principal.grants_in(study_id))


def _alert_refused(
    request: Request, principal: Principal, study_id: str, alert_id: str, action: str, error: TrialStackError,
    values: dict[str, str],
) -> Response:  # fmt: skip
    context = _alerts_context(request, principal, study_id)
    context.update(errors=errors_of(error), failed=f"{action}:{alert_id}", values=values)
    return page(request, "labs/alerts.html", context, principal=principal, study_id=study_id, status_code=422)


@router.post("/labs/alerts/confirm")
def confirm(study_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """The investigator confirms the proposed adverse event (the term as typed, else the proposed one)."""
    alert_id = text(posted, "alert_id") or ""
    site_id = _alert_grant_site(request, principal, study_id, alert_id)
    grant = authorize(principal, Action.LAB_ALERT_REVIEW, study_id, site_id)
    command = cmd.ConfirmLabAlert(alert_id, text(posted, "term"))
    try:
        run(request, actor_for(principal, grant), None, lambda uow: labs.confirm_alert(uow, study_id, command),
            event_summary)  # fmt: skip
    except TrialStackError as error:
        return _alert_refused(request, principal, study_id, alert_id, "confirm", error, {"term": command.term or ""})
    return redirect(request, f"/studies/{study_id}/labs/alerts?done=confirmed")


@router.post("/labs/alerts/dismiss")
def dismiss(study_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """The investigator dismisses an alert: the value is not an adverse event, and the reason says why."""
    alert_id = text(posted, "alert_id") or ""
    site_id = _alert_grant_site(request, principal, study_id, alert_id)
    grant = authorize(principal, Action.LAB_ALERT_REVIEW, study_id, site_id)
    command = cmd.DismissLabAlert(alert_id, text(posted, "reason") or "")
    try:
        run(request, actor_for(principal, grant), None, lambda uow: labs.dismiss_alert(uow, study_id, command),
            event_summary)  # fmt: skip
    except TrialStackError as error:
        return _alert_refused(request, principal, study_id, alert_id, "dismiss", error, {"reason": command.reason})
    return redirect(request, f"/studies/{study_id}/labs/alerts?done=dismissed")
