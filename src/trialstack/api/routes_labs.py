"""Labs endpoints: FHIR and HL7 results in (lab.import), a subject's results (lab.read at the subject's site),
triage (lab.triage) and alerts (lab.read, only the caller's sites; decided with lab.alert.review at the alert's
site).

An import is one unit of work through `execute` (Idempotency-Key, keyed on the SHA-256 of the raw body): rows
refused without `accept_valid` answer 422 problem+json listing each located error, and nothing is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from trialstack.api.access import subject_site_of, visible_sites
from trialstack.api.commands import execute
from trialstack.api.openapi import AUTHENTICATED_ERRORS, WRITE_ERRORS
from trialstack.api.platform import platform_of
from trialstack.api.problems import problem
from trialstack.api.schemas_labs import (
    AlertConfirmation,
    AlertDismissal,
    Assignment,
    Decision,
    ImportFingerprint,
    ImportReport,
    Rejection,
    Rows,
)
from trialstack.api.security import Authorized, requires
from trialstack.errors import NotFound
from trialstack.identity.policy import Action, Principal
from trialstack.labs import commands as cmd
from trialstack.labs import handlers
from trialstack.labs import readmodel as rm
from trialstack.labs.handlers import LabImportRefused, LabImportReport
from trialstack.labs.model import RowRefused
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.standards.fhir_labs import parse_fhir
from trialstack.standards.hl7_oru import parse_oru, split_messages
from trialstack.standards.lab_results import LabObservation, LabParseError

router = APIRouter(prefix="/api/v1/studies/{study_id}", tags=["labs"], responses=AUTHENTICATED_ERRORS)
Row = LabObservation | LabParseError


def alert_site_of(request: Request, principal: Principal) -> str:
    """Site resolver: the site of the alert's subject (not found outside the caller's sites)."""
    study_id, alert_id = request.path_params["study_id"], request.path_params["alert_id"]
    with platform_of(request).engine.connect() as connection:
        found = rm.alert(connection, study_id, alert_id)
    sites = visible_sites(principal, study_id)
    if found is None or (sites is not None and found["site_id"] not in sites):
        raise NotFound(f"no lab alert {alert_id}", field="alert_id")
    return str(found["site_id"])


Importing = Annotated[Authorized, requires(Action.LAB_IMPORT, site=None)]
SubjectLabs = Annotated[Authorized, requires(Action.LAB_READ, site=subject_site_of)]
Triage = Annotated[Authorized, requires(Action.LAB_TRIAGE, site=None)]
AlertsRead = Annotated[Authorized, requires(Action.LAB_READ, site=None)]
AlertReview = Annotated[Authorized, requires(Action.LAB_ALERT_REVIEW, site=alert_site_of)]
SourceQuery = Annotated[str, Query(min_length=1, max_length=40, description="The laboratory (labs.sources)")]
AcceptValid = Annotated[bool, Query(description="Take the valid results of a document with refused ones")]


def _body_spec(*types: str) -> dict[str, Any]:
    schema = {"type": "object"} if "json" in types[0] else {"type": "string"}
    return {"requestBody": {"required": True, "content": {kind: {"schema": schema} for kind in types}}}


def _located(error: RowRefused) -> dict[str, str]:
    """One refused row as the Problem schema's `errors` item (`field` left out when the row has none)."""
    item = {"location": error.location, "reason": error.reason}
    if error.field is not None:
        item["field"] = error.field
    return item


def _refused(report: LabImportReport) -> JSONResponse:
    first = report.errors[0] if report.errors else None
    return problem(
        422, "Lab results refused", f"{report.refused} of {report.rows} results refused, nothing written",
        "lab-import-refused", first.field if first is not None else None,
        errors=[_located(e) for e in report.errors],
        report=report.as_dict(),
    )  # fmt: skip


def _import(request: Request, auth: Authorized, source: str, accept_valid: bool, data: bytes, rows: list[Row]) -> Any:
    fingerprint = ImportFingerprint(sha256=hashlib.sha256(data).hexdigest(), source=source, accept_valid=accept_valid)

    def work(uow: UnitOfWork) -> LabImportReport:
        report = handlers.receive_results(uow, auth.study_id, cmd.ReceiveLabResults(source, rows, accept_valid))
        report.committed = True  # answered only when the unit commits
        return report

    def render(report: LabImportReport, _events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        return 200, report.as_dict()

    try:
        return execute(platform_of(request), auth.actor, request, fingerprint, work, render)
    except LabImportRefused as refused:
        return _refused(refused.report)


def _hl7_rows(text: str) -> Iterator[Row]:
    for number, message in enumerate(split_messages(text), start=1):
        try:
            yield from parse_oru(message, f"message {number}")
        except LabParseError as error:
            yield error


@router.post(
    "/labs/fhir", response_model=ImportReport, responses=WRITE_ERRORS,
    openapi_extra=_body_spec("application/fhir+json", "application/json"),
)  # fmt: skip
async def post_fhir(
    study_id: str, request: Request, auth: Importing, source: SourceQuery, accept_valid: AcceptValid = False
) -> Any:
    """A FHIR R4 Bundle, DiagnosticReport or Observation of laboratory results, in one unit of work: the report
    (received, corrected, repeated, unmatched → triage, graded, alerts). Refused or invalid: 422, nothing written."""
    data = await request.body()
    try:
        rows: list[Row] = list(parse_fhir(data, "body"))
    except LabParseError as error:
        report = LabImportReport(source, rows=1, refused=1)
        report.errors.append(RowRefused(error.location, error.field, error.reason))
        return _refused(report)
    return await run_in_threadpool(_import, request, auth, source, accept_valid, data, rows)


@router.post(
    "/labs/hl7", response_model=ImportReport, responses=WRITE_ERRORS,
    openapi_extra=_body_spec("application/hl7-v2", "text/plain"),
)  # fmt: skip
async def post_hl7(
    study_id: str, request: Request, auth: Importing, source: SourceQuery, accept_valid: AcceptValid = False
) -> Any:
    """One or more HL7 v2 ORU^R01 messages (segments separated by CR, LF or CRLF), in one unit of work."""
    data = await request.body()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    rows = list(_hl7_rows(text))
    return await run_in_threadpool(_import, request, auth, source, accept_valid, data, rows)


@router.get("/subjects/{subject_id}/labs", response_model=Rows)
def get_subject_labs(study_id: str, subject_id: str, request: Request, auth: SubjectLabs) -> dict[str, Any]:
    """The subject's lab results in the study's units, with flags, grades and corrections."""
    with platform_of(request).engine.connect() as connection:
        items = rm.results_of_subject(connection, study_id, subject_id)
    return {"study_id": study_id, "count": len(items), "items": items}


@router.get("/labs/triage", response_model=Rows)
def get_triage(
    study_id: str,
    request: Request,
    auth: Triage,
    status: Annotated[str | None, Query(pattern="^(open|assigned|rejected)$")] = "open",
) -> dict[str, Any]:
    """Results that matched no subject or visit (status open by default)."""
    with platform_of(request).engine.connect() as connection:
        items = rm.triage_items(connection, study_id, status)
    return {"study_id": study_id, "count": len(items), "items": items}


def _decide(request: Request, auth: Authorized, body: Any, key: str, status: str, work: Any) -> JSONResponse:
    def render(recorded: list[RecordedEvent], _events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        return 200, {"id": key, "status": status, "events": len(recorded)}

    return execute(platform_of(request), auth.actor, request, body, work, render)


@router.post("/labs/triage/{triage_id}/assign", response_model=Decision, responses=WRITE_ERRORS)
def post_assign(study_id: str, triage_id: str, body: Assignment, request: Request, auth: Triage) -> JSONResponse:
    """Assign a triaged result to a subject (and visit); `remember` maps the lab's patient id for later results."""
    command = cmd.AssignLabResult(triage_id, body.subject_id, body.visit, body.remember, body.reason)
    return _decide(
        request, auth, body, triage_id, "assigned", lambda uow: handlers.assign_triaged(uow, study_id, command)
    )


@router.post("/labs/triage/{triage_id}/reject", response_model=Decision, responses=WRITE_ERRORS)
def post_reject(study_id: str, triage_id: str, body: Rejection, request: Request, auth: Triage) -> JSONResponse:
    """Reject a triaged result (it belongs to no subject of the study); the reason is required."""
    command = cmd.RejectLabResult(triage_id, body.reason)
    return _decide(
        request, auth, body, triage_id, "rejected", lambda uow: handlers.reject_triaged(uow, study_id, command)
    )


@router.get("/labs/alerts", response_model=Rows)
def get_alerts(study_id: str, request: Request, auth: AlertsRead) -> dict[str, Any]:
    """Graded values at or above the study's alert grade, at the caller's sites only."""
    with platform_of(request).engine.connect() as connection:
        items = rm.alerts(connection, study_id, site_ids=auth.sites)
    return {"study_id": study_id, "count": len(items), "items": items}


@router.post("/labs/alerts/{alert_id}/confirm", response_model=Decision, responses=WRITE_ERRORS)
def post_confirm(
    study_id: str, alert_id: str, request: Request, auth: AlertReview, body: AlertConfirmation | None = None
) -> JSONResponse:
    """The investigator confirms the adverse event the alert proposed (the term may be edited)."""
    command = cmd.ConfirmLabAlert(alert_id, body.term if body is not None else None)
    return _decide(
        request, auth, body, alert_id, "confirmed", lambda uow: handlers.confirm_alert(uow, study_id, command)
    )


@router.post("/labs/alerts/{alert_id}/dismiss", response_model=Decision, responses=WRITE_ERRORS)
def post_dismiss(
    study_id: str, alert_id: str, body: AlertDismissal, request: Request, auth: AlertReview
) -> JSONResponse:
    """The investigator says why the value is not an adverse event."""
    command = cmd.DismissLabAlert(alert_id, body.reason)
    return _decide(
        request, auth, body, alert_id, "dismissed", lambda uow: handlers.dismiss_alert(uow, study_id, command)
    )
