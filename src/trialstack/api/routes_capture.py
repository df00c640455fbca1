"""Capture endpoints: subjects, visits, forms (with live edit-check results), SDV, freeze and lock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from trialstack.api.access import subject_site_of
from trialstack.api.commands import etag, execute, if_match_version
from trialstack.api.openapi import AUTHENTICATED_ERRORS, WRITE_ERRORS
from trialstack.api.platform import platform_of, study_rules_of
from trialstack.api.schemas import (
    FORM_PATTERN,
    VISIT_PATTERN,
    CompleteRequest,
    EnrolRequest,
    ErasureRequest,
    ReasonRequest,
    SaveFormRequest,
    ScreenFailRequest,
    ScreenRequest,
    SdvRequest,
    SignRequest,
    VisitDateRequest,
    WithdrawRequest,
)
from trialstack.api.security import Authorized, requires
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.handlers import Outcome, read_casebook
from trialstack.capture.readmodel import get_subject, list_subjects, subject_signatures
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.capture.views import casebook_matrix, form_detail
from trialstack.identity.authentication import reauthenticate_for_signature
from trialstack.identity.policy import Action
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork

router = APIRouter(prefix="/api/v1/studies/{study_id}", tags=["capture"], responses=AUTHENTICATED_ERRORS)
SubjectsRead = Annotated[Authorized, requires(Action.SUBJECT_READ, site=None)]
Screening = Annotated[Authorized, requires(Action.SUBJECT_SCREEN, site=None)]
SubjectRead = Annotated[Authorized, requires(Action.SUBJECT_READ, site=subject_site_of)]
DataEntry = Annotated[Authorized, requires(Action.DATA_ENTER, site=subject_site_of)]
Enrolment = Annotated[Authorized, requires(Action.SUBJECT_ENROL, site=subject_site_of)]
Withdrawal = Annotated[Authorized, requires(Action.SUBJECT_WITHDRAW, site=subject_site_of)]
Sdv = Annotated[Authorized, requires(Action.SDV_PERFORM, site=subject_site_of)]
Erasure = Annotated[Authorized, requires(Action.PERSONAL_DATA_ERASE, site=subject_site_of)]
Freezing = Annotated[Authorized, requires(Action.FORM_FREEZE, site=subject_site_of)]
CasebookLock = Annotated[Authorized, requires(Action.CASEBOOK_LOCK, site=subject_site_of)]
StudyLock = Annotated[Authorized, requires(Action.STUDY_LOCK, site=None)]
Signing = Annotated[Authorized, requires(Action.CASEBOOK_SIGN, site=subject_site_of)]
FormPath = Annotated[
    str, Path(pattern=FORM_PATTERN, description="A form instance: VISIT.FORM, VISIT.N.FORM or LOGFORM.N (AE.3)")
]
VisitPath = Annotated[str, Path(pattern=VISIT_PATTERN, description="A visit instance: VISIT or VISIT.N")]


def render_outcome(status: int = 200) -> Callable[[Outcome, list[RecordedEvent]], tuple[int, dict[str, Any]]]:
    """The answer to a capture command: version, every check evaluated, queries it opened or closed, events."""

    def render(outcome: Outcome, events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        opened = [e.payload for e in events if e.event_type == "QueryOpened"]
        closed = [e.payload for e in events if e.event_type == "QueryClosed"]
        return status, {
            "subject_id": outcome.subject_id,
            "version": outcome.stream_version,
            "checks": [
                {
                    "check_id": r.check_id,
                    "form": r.form,
                    "item": r.item,
                    "result": {True: "pass", False: "fail", None: "unknown"}[r.result],
                    "message": r.message,
                    "action": r.action.value,
                }
                for r in outcome.checks
            ],
            "queries_opened": [
                {
                    "query_id": q["query_id"],
                    "check_id": q.get("check_id"),
                    "form": q["form"],
                    "item": q["item"],
                    "text": q["text"],
                }
                for q in opened
            ],
            "queries_closed": [{"query_id": q["query_id"], "automatic": q["automatic"]} for q in closed],
            "events": [
                {"study_seq": e.study_seq, "event_type": e.event_type, "stream_id": e.stream_id} for e in events
            ],
        }

    return render


def _on_subject(
    request: Request, auth: Authorized, body: Any, work: Callable[[UnitOfWork, int | None], Outcome]
) -> JSONResponse:
    pinned = if_match_version(request)
    return execute(
        platform_of(request),
        auth.actor,
        request,
        body,
        lambda uow: work(uow, pinned),
        render_outcome(),
        pinned_version=pinned is not None,
    )


@router.get("/subjects")
def get_subjects(study_id: str, request: Request, auth: SubjectsRead, site: str | None = None) -> dict[str, Any]:
    """List the subjects of the study at the sites the user may see (optionally one of them)."""
    sites = auth.sites
    if site is not None:
        auth.at_site(site)
        sites = frozenset({site})
    with platform_of(request).engine.connect() as connection:
        return {"subjects": list_subjects(connection, study_id, sites)}


@router.post("/subjects", status_code=201, responses=WRITE_ERRORS)
def post_subject(study_id: str, body: ScreenRequest, request: Request, auth: Screening) -> JSONResponse:
    """Screen a new subject at a site; the answer carries its screening number."""
    command = cmd.ScreenSubject(body.site_id, body.screened_on)
    return execute(
        platform_of(request),
        auth.at_site(body.site_id).actor,
        request,
        body,
        lambda uow: handlers.screen_subject(uow, study_id, command),
        render_outcome(201),
    )


@router.get("/subjects/{subject_id}")
def get_casebook(study_id: str, subject_id: str, request: Request, auth: SubjectRead) -> JSONResponse:
    """The subject's casebook: status and the visit × form matrix; ETag is the version for If-Match."""
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        rules = study_rules_of(connection, study_id)
        casebook = read_casebook(connection, platform.cache, study_id, subject_id, platform.vault)
        subject = get_subject(connection, study_id, subject_id)
        signatures = subject_signatures(connection, study_id, subject_id)
    body = {
        "subject": subject,
        "version": casebook.version,
        "signatures": signatures,
        **casebook_matrix(rules, casebook),
    }
    return JSONResponse(body, headers={"ETag": etag(casebook.version)})


@router.get("/subjects/{subject_id}/forms/{form}")
def get_form(study_id: str, subject_id: str, form: FormPath, request: Request, auth: SubjectRead) -> JSONResponse:
    """One form instance with its items, values, visibility, SDV state and failing checks."""
    platform = platform_of(request)
    key = FormKey.parse(form)
    with platform.engine.connect() as connection:
        rules = study_rules_of(connection, study_id)
        casebook = read_casebook(connection, platform.cache, study_id, subject_id, platform.vault)
    body = {"subject_id": subject_id, "version": casebook.version, **form_detail(rules, casebook, key)}
    return JSONResponse(body, headers={"ETag": etag(casebook.version)})


@router.put("/subjects/{subject_id}/forms/{form}", responses=WRITE_ERRORS)
def put_form(
    study_id: str, subject_id: str, form: FormPath, body: SaveFormRequest, request: Request, auth: DataEntry
) -> JSONResponse:
    """Save items of a form instance; the answer lists every edit check run and the queries opened or closed."""
    command = cmd.SaveForm(
        subject_id,
        FormKey.parse(form),
        {
            item: cmd.ItemInput(
                value=None if entry.value is None else str(entry.value),
                unit=entry.unit,
                not_done_reason=entry.not_done_reason,
                reason_for_change=entry.reason_for_change,
            )
            for item, entry in body.items.items()
        },
        reason=body.reason,
    )
    return _on_subject(
        request, auth, body,
        lambda uow, pinned: handlers.save_form(uow, study_id, command, pinned),
    )  # fmt: skip


@router.put("/subjects/{subject_id}/visits/{visit}", responses=WRITE_ERRORS)
def put_visit(
    study_id: str, subject_id: str, visit: VisitPath, body: VisitDateRequest, request: Request, auth: DataEntry
) -> JSONResponse:
    """Record (or correct, with a reason) the date a visit took place; out-of-window dates raise a query."""
    command = cmd.RecordVisitDate(subject_id, VisitKey.parse(visit), body.visit_date, body.reason)
    return _on_subject(
        request, auth, body,
        lambda uow, pinned: handlers.record_visit_date(uow, study_id, command, pinned),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/enrolment", responses=WRITE_ERRORS)
def post_enrolment(
    study_id: str, subject_id: str, body: EnrolRequest, request: Request, auth: Enrolment
) -> JSONResponse:
    """Enrol the subject: refused, naming the criteria, unless every eligibility criterion holds."""
    command = cmd.EnrolSubject(subject_id, body.enrolled_on)
    return _on_subject(
        request, auth, body,
        lambda uow, _: handlers.enrol_subject(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/screen-failure", responses=WRITE_ERRORS)
def post_screen_failure(
    study_id: str, subject_id: str, body: ScreenFailRequest, request: Request, auth: Enrolment
) -> JSONResponse:
    """Record a screen failure with its reason."""
    command = cmd.ScreenFailSubject(subject_id, body.failed_on, body.reason)
    return _on_subject(
        request, auth, body,
        lambda uow, _: handlers.screen_fail_subject(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/withdrawal", responses=WRITE_ERRORS)
def post_withdrawal(
    study_id: str, subject_id: str, body: WithdrawRequest, request: Request, auth: Withdrawal
) -> JSONResponse:
    """Withdraw an enrolled subject from the study, with the reason."""
    command = cmd.WithdrawSubject(subject_id, body.withdrawn_on, body.reason)
    return _on_subject(
        request, auth, body,
        lambda uow, _: handlers.withdraw_subject(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/completion", responses=WRITE_ERRORS)
def post_completion(
    study_id: str, subject_id: str, body: CompleteRequest, request: Request, auth: Withdrawal
) -> JSONResponse:
    """Record that an enrolled subject completed the study."""
    command = cmd.CompleteSubject(subject_id, body.completed_on)
    return _on_subject(
        request, auth, body,
        lambda uow, _: handlers.complete_subject(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/personal-data/erasure", responses=WRITE_ERRORS)
def post_personal_data_erasure(
    study_id: str, subject_id: str, body: ErasureRequest, request: Request, auth: Erasure
) -> JSONResponse:
    """Crypto-shred the subject's personal data (its vault key), with the reason; the clinical data stays."""
    command = cmd.ErasePersonalData(subject_id, body.reason)
    return _on_subject(
        request, auth, body,
        lambda uow, _: handlers.erase_personal_data(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/forms/{form}/sdv", responses=WRITE_ERRORS)
def post_sdv(
    study_id: str, subject_id: str, form: FormPath, body: SdvRequest, request: Request, auth: Sdv
) -> JSONResponse:
    """Source data verification of a form instance (the named items, or every item due for SDV)."""
    command = cmd.VerifySourceData(subject_id, FormKey.parse(form), tuple(body.items))
    return _on_subject(
        request, auth, body,
        lambda uow, _: handlers.verify_source_data(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/forms/{form}/freeze", responses=WRITE_ERRORS)
def post_freeze(study_id: str, subject_id: str, form: FormPath, request: Request, auth: Freezing) -> JSONResponse:
    """Freeze a form instance: no change until a data manager unfreezes it."""
    command = cmd.FreezeForm(subject_id, FormKey.parse(form))
    return _on_subject(
        request, auth, None,
        lambda uow, _: handlers.freeze_form(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/forms/{form}/unfreeze", responses=WRITE_ERRORS)
def post_unfreeze(
    study_id: str, subject_id: str, form: FormPath, body: ReasonRequest, request: Request, auth: Freezing
) -> JSONResponse:
    """Unfreeze a form instance, with the reason."""
    command = cmd.UnfreezeForm(subject_id, FormKey.parse(form), body.reason)
    return _on_subject(
        request, auth, body,
        lambda uow, _: handlers.unfreeze_form(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/lock", responses=WRITE_ERRORS)
def post_casebook_lock(study_id: str, subject_id: str, request: Request, auth: CasebookLock) -> JSONResponse:
    """Lock the subject's casebook: no write until it is unlocked with a reason."""
    command = cmd.LockCasebook(subject_id)
    return _on_subject(
        request, auth, None,
        lambda uow, _: handlers.lock_casebook(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/unlock", responses=WRITE_ERRORS)
def post_casebook_unlock(
    study_id: str, subject_id: str, body: ReasonRequest, request: Request, auth: CasebookLock
) -> JSONResponse:
    """Unlock the subject's casebook, with the reason."""
    command = cmd.UnlockCasebook(subject_id, body.reason)
    return _on_subject(
        request, auth, body,
        lambda uow, _: handlers.unlock_casebook(uow, study_id, command),
    )  # fmt: skip


@router.post("/subjects/{subject_id}/signatures", responses=WRITE_ERRORS)
def post_signature(study_id: str, subject_id: str, body: SignRequest, request: Request, auth: Signing) -> JSONResponse:
    """Sign the casebook (or one form): re-authentication, the meaning, printed name and time, bound to a hash
    of what is signed. A wrong password is recorded (SignatureFailed) and answered 401."""
    form = FormKey.parse(body.form) if body.form is not None else None

    def work(uow: UnitOfWork) -> Outcome:
        signer = reauthenticate_for_signature(uow, auth.principal.username, body.password, body.totp)
        command = cmd.SignCasebook(subject_id, body.meaning, auth.actor.id, signer.display_name, form)
        return handlers.sign_casebook(uow, study_id, command)

    return execute(
        platform_of(request), auth.actor, request, body.model_copy(update={"password": ""}), work, render_outcome()
    )


def _study_command(
    request: Request, auth: Authorized, body: Any, work: Callable[[UnitOfWork], Outcome]
) -> JSONResponse:
    return execute(platform_of(request), auth.actor, request, body, work, render_outcome())


@router.post("/lock", responses=WRITE_ERRORS)
def post_study_lock(study_id: str, request: Request, auth: StudyLock) -> JSONResponse:
    """Lock the whole study database (after the last casebook is clean)."""
    return _study_command(request, auth, None, lambda uow: handlers.lock_study(uow, cmd.LockStudy(study_id)))


@router.post("/unlock", responses=WRITE_ERRORS)
def post_study_unlock(study_id: str, body: ReasonRequest, request: Request, auth: StudyLock) -> JSONResponse:
    """Unlock the study database, with the reason."""
    command = cmd.UnlockStudy(study_id, body.reason)
    return _study_command(request, auth, body, lambda uow: handlers.unlock_study(uow, command))
