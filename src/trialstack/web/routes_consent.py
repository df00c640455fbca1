"""Consent pages for the site: the study's consent tracker, and one subject's consent (invite to the participant
app, countersign, record a paper consent, withdraw, download signed copies), on the consent context's handlers.

Reads need `consent.read` at the subject's site; every write needs `consent.obtain` there. A countersignature
re-authenticates the signer in the same unit of work, as the casebook signature does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection
from starlette.datastructures import FormData

from trialstack.api.access import actor_for, visible_sites
from trialstack.api.platform import platform_of
from trialstack.consent import commands as consent_commands
from trialstack.consent import events as consent_events
from trialstack.consent import handlers as consent
from trialstack.consent.model import COUNTERSIGN_MEANING, ParticipantConsent
from trialstack.consent.readmodel import consent_subject, tracker_rows
from trialstack.errors import InvalidInput, NotFound, TrialStackError
from trialstack.identity.authentication import reauthenticate_for_signature
from trialstack.identity.model import NotAuthenticated, TooManyAttempts
from trialstack.identity.policy import Action, Principal, authorize
from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import decode
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.readmodel import version_in_force
from trialstack.web.forms import errors_of, text
from trialstack.web.loaders import authorize_staff_on_subject, today
from trialstack.web.routing import redirect, web_router
from trialstack.web.run import event_summary, run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import can, page, when

router = web_router()
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]
FILTERS = {
    "reconsent": "Must re-consent",
    "countersign": "Awaiting countersignature",
}
DONE = {
    "countersigned": "Countersigned: the signed copy now carries your signature.",
    "paper": "Paper consent recorded.",
    "withdrawn": "Withdrawal recorded.",
}


def signed_copies(connection: Connection, study_id: str, subject_id: str) -> list[dict[str, Any]]:
    """Every signed copy of a subject, newest first: one per signature and one per countersignature."""
    found: list[dict[str, Any]] = []
    for event in store.read_stream(connection, consent.CONSENT, consent.stream_id(study_id, subject_id)):
        payload = decode(event)
        if isinstance(payload, consent_events.ConsentSigned | consent_events.ConsentCountersigned):
            found.append(
                {
                    "document_id": payload.document_id,
                    "version": payload.version,
                    "signed_at": payload.signed_at,
                    "countersigned": isinstance(payload, consent_events.ConsentCountersigned),
                    "sha256": payload.copy_sha256,
                }
            )
    return list(reversed(found))


def _definition(connection: Connection, study_id: str) -> StudyDefinition:
    version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version.definition


# --- the tracker --------------------------------------------------------------------------------------------------


@router.get("/studies/{study_id}/consent")
def tracker_page(study_id: str, request: Request, principal: User, show: str = "") -> Response:
    """Every subject at the user's sites with each document's standing; filters for the work to do."""
    authorize(principal, Action.CONSENT_READ, study_id)
    with platform_of(request).engine.connect() as connection:
        rows = tracker_rows(connection, study_id, visible_sites(principal, study_id))
    counts = {
        "reconsent": sum(1 for row in rows if row["reconsent_version"]),
        "countersign": sum(1 for row in rows if row["awaiting_countersignature"]),
    }
    if show == "reconsent":
        rows = [row for row in rows if row["reconsent_version"]]
    elif show == "countersign":
        rows = [row for row in rows if row["awaiting_countersignature"]]
    else:
        show = ""
    context = {"rows": rows, "show": show, "filters": FILTERS, "counts": counts}
    return page(request, "consent/tracker.html", context, principal=principal, study_id=study_id)


# --- one subject --------------------------------------------------------------------------------------------------


def _subject_context(
    request: Request, principal: Principal, study_id: str, subject_id: str, site_id: str
) -> dict[str, Any]:
    platform = platform_of(request)
    day = today(request)
    with platform.engine.connect() as connection:
        definition = _definition(connection, study_id)
        state: ParticipantConsent = consent.read_consent(connection, study_id, subject_id)
        row = consent_subject(connection, study_id, subject_id)
        copies = signed_copies(connection, study_id, subject_id)
    documents = []
    languages: set[str] = set()
    for document in definition.consent:
        in_force = document.current_at(site_id, day)
        documents.append({"document": document, "in_force": in_force, "held": state.document(document.id)})
        languages |= {t.language for t in in_force.texts} if in_force is not None else set()
    return {
        "subject_id": subject_id,
        "site_id": site_id,
        "row": row,
        "state": state,
        "documents": documents,
        "languages": sorted(languages) or ["en"],
        "copies": copies,
        "meaning": COUNTERSIGN_MEANING,
        "printed_name": principal.display_name,
        "now": when(platform.clock.now().strftime("%Y-%m-%dT%H:%M:%S")),
        "today": day.isoformat(),
        "obtain": can(principal, Action.CONSENT_OBTAIN, study_id, site_id),
        "errors": {},
        "failed": None,
        "values": {},
        "invited": None,
        "done": None,
    }


def _subject_page(
    request: Request, principal: Principal, study_id: str, subject_id: str, site_id: str, status: int = 200,
    **extra: Any,
) -> Response:  # fmt: skip
    context = {**_subject_context(request, principal, study_id, subject_id, site_id), **extra}
    return page(request, "consent/subject.html", context, principal=principal, study_id=study_id, status_code=status)


@router.get("/studies/{study_id}/subjects/{subject_id}/consent")
def subject_consent_page(study_id: str, subject_id: str, request: Request, principal: User, done: str = "") -> Response:
    """One subject's consent: invitation, each document's standing, the actions, the signed copies."""
    _, site_id = authorize_staff_on_subject(request, principal, Action.CONSENT_READ, study_id, subject_id)
    return _subject_page(request, principal, study_id, subject_id, site_id, done=DONE.get(done))


@router.get("/studies/{study_id}/subjects/{subject_id}/consent/copies/{sha256}")
def subject_copy(study_id: str, subject_id: str, sha256: str, request: Request, principal: User) -> Response:
    """A signed copy of this subject (PDF), by the SHA-256 its signature event holds."""
    authorize_staff_on_subject(request, principal, Action.CONSENT_READ, study_id, subject_id)
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        copy = next((c for c in signed_copies(connection, study_id, subject_id) if c["sha256"] == sha256), None)
        if copy is None:
            raise NotFound(f"no signed copy {sha256[:12]} for subject {subject_id}", field="sha256")
        content = consent.signed_copy_pdf(connection, platform.vault, study_id, subject_id, sha256)
    name = f"{study_id}-{subject_id}-{copy['document_id']}-{copy['version']}-{sha256[:8]}.pdf"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    return Response(content, media_type="application/pdf", headers=headers)


def _base(study_id: str, subject_id: str) -> str:
    return f"/studies/{study_id}/subjects/{subject_id}/consent"


@router.post("/studies/{study_id}/subjects/{subject_id}/consent/invite")
def invite(study_id: str, subject_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Invite the subject to the participant app: the one-time code is shown here once, never stored."""
    grant, site_id = authorize_staff_on_subject(request, principal, Action.CONSENT_OBTAIN, study_id, subject_id)
    values = {"language": text(posted, "language") or "en", "valid_hours": text(posted, "valid_hours") or "72"}
    try:
        if not values["valid_hours"].isdigit():
            raise InvalidInput("the number of hours is a whole number", field="valid_hours")
        command = consent_commands.InviteParticipant(subject_id, values["language"], int(values["valid_hours"]))
        outcome: dict[str, Any] = {}

        def work(uow: UnitOfWork) -> consent.Invited:
            invited = consent.invite_participant(uow, study_id, site_id, command)
            outcome["code"] = invited.code
            outcome["expires_at"] = invited.events[0].payload["expires_at"]
            return invited

        run(request, actor_for(principal, grant), None, work, lambda _r, events: event_summary(None, events))
    except TrialStackError as error:
        return _subject_page(
            request, principal, study_id, subject_id, site_id, 422, errors=errors_of(error), failed="invite",
            values=values,
        )  # fmt: skip
    response = _subject_page(request, principal, study_id, subject_id, site_id, invited=outcome)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/studies/{study_id}/subjects/{subject_id}/consent/{document_id}/countersign")
def countersign(
    study_id: str, subject_id: str, document_id: str, request: Request, principal: User, posted: Posted
) -> Response:
    """Re-authenticate, then countersign the participant's signature (a new signed copy with both signatures)."""
    grant, site_id = authorize_staff_on_subject(request, principal, Action.CONSENT_OBTAIN, study_id, subject_id)
    password = posted.get("password")
    totp = text(posted, "totp")
    command = consent_commands.CountersignConsent(subject_id, document_id)

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        reauthenticate_for_signature(uow, principal.username, password if isinstance(password, str) else "", totp)
        return consent.countersign_consent(
            uow, study_id, principal.username, principal.display_name, grant.role.value, command
        )

    try:
        run(request, actor_for(principal, grant), None, work, event_summary)
    except TrialStackError as error:
        errors = errors_of(error)
        if isinstance(error, NotAuthenticated | TooManyAttempts):
            errors = {"password": error.message}
        return _subject_page(
            request, principal, study_id, subject_id, site_id, 422, errors=errors, failed=f"countersign:{document_id}"
        )
    return redirect(request, _base(study_id, subject_id) + "?done=countersigned")


@router.post("/studies/{study_id}/subjects/{subject_id}/consent/paper")
def record_paper(study_id: str, subject_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Record a consent signed on paper: date, version, language and the Yes or No to each optional part."""
    grant, site_id = authorize_staff_on_subject(request, principal, Action.CONSENT_OBTAIN, study_id, subject_id)
    values = {key: value for key, value in posted.items() if isinstance(value, str) and key != "csrf_token"}
    choices = {
        key.split(".", 1)[1]: value == "yes"
        for key, value in values.items()
        if key.startswith("choices.") and value in ("yes", "no")
    }
    try:
        command = consent_commands.RecordPaperConsent(
            subject_id=subject_id,
            document_id=text(posted, "document_id") or "",
            version=text(posted, "version") or "",
            signed_on=text(posted, "signed_on") or "",
            language=text(posted, "language") or "en",
            choices=choices,
        )
        obtained_by = (principal.username, principal.display_name)
        run(
            request, actor_for(principal, grant), None,
            lambda uow: consent.record_paper_consent(uow, study_id, site_id, obtained_by, command), event_summary,
        )  # fmt: skip
    except TrialStackError as error:
        return _subject_page(
            request, principal, study_id, subject_id, site_id, 422, errors=errors_of(error), failed="paper",
            values=values,
        )  # fmt: skip
    return redirect(request, _base(study_id, subject_id) + "?done=paper")


@router.post("/studies/{study_id}/subjects/{subject_id}/consent/withdraw")
def withdraw(study_id: str, subject_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Withdraw consent to a whole document or one optional part, saying what continues and why."""
    grant, site_id = authorize_staff_on_subject(request, principal, Action.CONSENT_OBTAIN, study_id, subject_id)
    values = {key: value for key, value in posted.items() if isinstance(value, str) and key != "csrf_token"}
    scope = text(posted, "part") or ""
    try:
        command = consent_commands.WithdrawConsent(
            subject_id=subject_id,
            document_id=text(posted, "document_id") or "",
            withdrawn_on=text(posted, "withdrawn_on") or "",
            reason=text(posted, "reason") or "",
            part=scope or None,
            continues=tuple(v for v in posted.getlist("continues") if isinstance(v, str) and v),
        )
        run(
            request, actor_for(principal, grant), None,
            lambda uow: consent.withdraw_consent(uow, study_id, command), event_summary,
        )  # fmt: skip
    except TrialStackError as error:
        return _subject_page(
            request, principal, study_id, subject_id, site_id, 422, errors=errors_of(error), failed="withdraw",
            values=values,
        )  # fmt: skip
    return redirect(request, _base(study_id, subject_id) + "?done=withdrawn")
