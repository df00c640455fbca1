"""A subject's questionnaires for the site: every entry (completed, missed, due) with the device's completion time
and the server's receipt time, compliance of the diaries, alerts (investigators acknowledge clinical ones with a
note), and each score over time on a chart (Chart.js, vendored: docs/decisions/0009-vendored-chart-library.md).

Answers are the participant's own: nothing here edits them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from trialstack.api.access import actor_for, authorize_subject
from trialstack.api.ecoa_views import compliance, score_series, subject_entries
from trialstack.api.platform import platform_of
from trialstack.api.routes_ecoa import AcknowledgementRequest
from trialstack.ecoa import commands as cmd
from trialstack.ecoa import handlers
from trialstack.ecoa.readmodel import subject_alerts, subject_facts_row
from trialstack.errors import InvalidInput, NotFound
from trialstack.identity.policy import Action, Principal
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.readmodel import version_in_force
from trialstack.web.routes_participant_ecoa import entry_label
from trialstack.web.routing import redirect, web_router
from trialstack.web.run import event_summary, run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import page

router = web_router(prefix="/studies/{study_id}/subjects/{subject_id}/questionnaires")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]


def _definition(request: Request, study_id: str) -> StudyDefinition:
    with platform_of(request).engine.connect() as connection:
        version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version.definition


def _context(request: Request, principal: Principal, study_id: str, subject_id: str) -> dict[str, Any]:
    platform = platform_of(request)
    definition = _definition(request, study_id)
    with platform.engine.connect() as connection:
        _, site_id = authorize_subject(connection, principal, Action.ECOA_READ, study_id, subject_id)
        rows = subject_entries(connection, definition, study_id, subject_id, platform.clock.now())
        alerts = subject_alerts(connection, study_id, subject_id)
        facts = subject_facts_row(connection, study_id, subject_id)
    names = {i.id: i.name for i in definition.questionnaires.instruments} if definition.questionnaires else {}
    for row in rows:
        row["label"] = entry_label(definition, row["entry"])
    for alert in alerts:
        kind, _, rest = str(alert["alert_key"]).partition(":")
        alert["alert"], _, alert["client_id"] = rest.partition(":") if kind == "clinical" else ("", "", "")
    series = score_series(definition, rows)
    tablet = [row for row in rows if row["status"] == "due" and row["day"] != row["entry"]]
    return {
        "tablet": tablet,
        "participant_account": facts["username"] if facts else None,
        "subject_id": subject_id,
        "site_id": site_id,
        "rows": rows,
        "names": names,
        "compliance": compliance(definition, rows),
        "threshold": definition.questionnaires.compliance if definition.questionnaires else None,
        "alerts": alerts,
        "series": series,
        "series_json": json.dumps(series),
    }


@router.get("")
def questionnaires_page(study_id: str, subject_id: str, request: Request, principal: User, done: str = "") -> Response:
    """The subject's entries, compliance, alerts and score charts (read-only answers)."""
    context = _context(request, principal, study_id, subject_id)
    context["done"] = done
    return page(request, "ecoa/subject.html", context, principal=principal, study_id=study_id)


@router.post("/alerts/{alert}/acknowledge")
def acknowledge(
    study_id: str, subject_id: str, alert: str, request: Request, principal: User, posted: Posted
) -> Response:
    """The investigator acknowledges a clinical alert with a note (ecoa's AcknowledgeClinicalAlert)."""
    with platform_of(request).engine.connect() as connection:
        grant, _ = authorize_subject(connection, principal, Action.ECOA_ALERT_ACKNOWLEDGE, study_id, subject_id)
    try:
        body = AcknowledgementRequest(client_id=str(posted.get("client_id", "")), note=str(posted.get("note", "")))
    except ValidationError as error:
        where = str(error.errors()[0]["loc"][0]) if error.errors() else "note"
        raise InvalidInput(f"{where}: write a note of what was done", field=where) from None
    command = cmd.AcknowledgeClinicalAlert(subject_id, alert, body.client_id, body.note)
    username = principal.username

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        return handlers.acknowledge_alert(uow, study_id, username, command)

    run(request, actor_for(principal, grant), body, work, event_summary)
    return redirect(request, f"/studies/{study_id}/subjects/{subject_id}/questionnaires?done=acknowledged")
