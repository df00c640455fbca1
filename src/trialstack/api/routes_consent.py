"""Consent endpoints (eConsent): invitations, the participant's activation, the document to read, signatures,
countersignatures, paper consent, withdrawals, the signed copy, and the site's consent tracker.

Two kinds of caller: site staff (CONSENT_READ / CONSENT_OBTAIN at the subject's site) and the participant, whose
account belongs to one subject (PARTICIPANT_SELF). A participant reaches only their own subject: any other subject
is answered 404, exactly like a subject at a site the caller cannot see; staff routes answer them 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from trialstack.api.access import subject_site, subject_site_of
from trialstack.api.commands import etag, execute, if_match_version
from trialstack.api.openapi import AUTHENTICATED_ERRORS, WRITE_ERRORS, problem_responses
from trialstack.api.platform import platform_of
from trialstack.api.problems import PreconditionFailed, problem
from trialstack.api.schemas_consent import (
    LANGUAGE_PATTERN,
    SHA256_PATTERN,
    ActivationRequest,
    ConsentWithdrawalRequest,
    CountersignatureRequest,
    InvitationRequest,
    PaperConsentRequest,
    SignatureRequest,
)
from trialstack.api.security import PUBLIC, Authorized, RequireAction, current_principal, login_throttle, requires
from trialstack.consent import commands as cmd
from trialstack.consent import handlers
from trialstack.consent.model import (
    DocumentConsent,
    InvitationRefused,
    WrongAnswer,
    consent_document,
    sections_of,
    text_for,
)
from trialstack.consent.readmodel import tracker_rows
from trialstack.errors import InvalidInput, NotFound
from trialstack.identity import commands as identity_commands
from trialstack.identity import handlers as identity_handlers
from trialstack.identity.authentication import reauthenticate_for_signature
from trialstack.identity.policy import Action, Forbidden, Grant, Principal, Role, authorize
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.errors import ConcurrencyConflict
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import ConsentDocument, ConsentVersion, StudyDefinition
from trialstack.protocol.readmodel import version_in_force

T = TypeVar("T")
router = APIRouter(prefix="/api/v1", tags=["consent"], responses=AUTHENTICATED_ERRORS)
SUBJECT = "/studies/{study_id}/subjects/{subject_id}"
ACTIVATION_THROTTLE_KEY = "participant activation"
"""What failed invitation codes are counted under (with the client address): not a username (it has a space), so
guessing codes from one place is slowed down whatever code or account name each attempt tries."""
MAX_ATTEMPTS = 3
PDF = "application/pdf"


def own_subject_site_of(request: Request, principal: Principal) -> str:
    """Site resolver for routes a participant may call: the subject's site, for staff who see that site or for the
    participant the subject's account belongs to; NotFound otherwise (another subject's existence is not disclosed).
    """
    study_id, subject_id = request.path_params["study_id"], request.path_params["subject_id"]
    own = principal.own_subject(study_id)
    if own is not None and own != subject_id:
        raise NotFound(f"subject {subject_id} not found in study {study_id}", field="subject")
    with platform_of(request).engine.connect() as connection:
        return subject_site(connection, principal, study_id, subject_id)


class RequireAnyAction(RequireAction):
    """`requires` for a route open to either of several actions (staff CONSENT_READ, or the participant's own
    PARTICIPANT_SELF): allowed when any one of `actions` is granted at the subject's site. `actions` is what the
    route × role matrix reads; `action` (the first) is what `route_actions` lists by default."""

    def __init__(self, actions: tuple[Action, ...], site: Callable[[Request, Principal], str]) -> None:
        super().__init__(actions[0], "study_id", site)
        self.actions = actions
        self.resolve = site

    def _grant(self, principal: Principal, study_id: str, site_id: str | None) -> tuple[Action, Grant]:
        for action in self.actions:
            try:
                return action, authorize(principal, action, study_id, site_id)
            except Forbidden:
                continue
        wanted = " or ".join(action.value for action in self.actions)
        where = f" at site {site_id}" if site_id is not None else ""
        raise Forbidden(f"{principal.username} may not {wanted} in study {study_id}{where}")

    def __call__(self, request: Request) -> Authorized:
        principal = current_principal(request)
        study_id = request.path_params["study_id"]
        self._grant(principal, study_id, None)  # a role without any of the actions: 403 before any lookup
        site_id = self.resolve(request, principal)
        action, grant = self._grant(principal, study_id, site_id)
        return Authorized(principal, action, study_id, site_id, grant)


def requires_any(*actions: Action) -> Any:
    """`requires` for a participant route: any one of `actions` at the subject's site (own subject only)."""
    return Depends(RequireAnyAction(actions, own_subject_site_of))


ConsentRead = Annotated[Authorized, requires_any(Action.CONSENT_READ, Action.PARTICIPANT_SELF)]
ConsentObtain = Annotated[Authorized, requires(Action.CONSENT_OBTAIN, site=subject_site_of)]
ParticipantSelf = Annotated[Authorized, requires(Action.PARTICIPANT_SELF, site=own_subject_site_of)]
Withdrawing = Annotated[Authorized, requires_any(Action.CONSENT_OBTAIN, Action.PARTICIPANT_SELF)]
TrackerRead = Annotated[Authorized, requires(Action.CONSENT_READ, site=None)]
LanguageQuery = Annotated[str, Query(pattern=LANGUAGE_PATTERN, description="The language to read it in")]
DocumentPath = Annotated[str, Path(min_length=1, max_length=64, description="A consent document (ICF)")]
CopyPath = Annotated[str, Path(pattern=SHA256_PATTERN, description="The SHA-256 of a signed copy")]


# --- reading ---------------------------------------------------------------------------------------------------


def _definition(request: Request, study_id: str) -> StudyDefinition:
    with platform_of(request).engine.connect() as connection:
        version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version.definition


def _in_force(document: ConsentDocument, site_id: str, request: Request) -> ConsentVersion | None:
    return document.current_at(site_id, platform_of(request).clock.now().date())


def _version_json(version: ConsentVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "version": version.version,
        "effective": version.effective.isoformat() if version.effective else None,
        "ethics_approval": version.ethics_approval,
        "electronic": version.electronic,
        "languages": [text.language for text in version.texts],
    }


def _standing(held: DocumentConsent) -> dict[str, Any]:
    signature, counter = held.signature, held.countersignature
    copy = counter.copy_sha256 if counter is not None else signature.copy_sha256 if signature is not None else None
    reconsent = held.reconsent
    return {
        "consented": held.consented,
        "signed_version": held.signed_version,
        "signed_on": held.signed_on,
        "method": None if held.signed_version is None else "electronic" if held.electronic else "paper",
        "signed_by": signature.signed_by if signature is not None else None,
        "awaiting_countersignature": held.awaiting_countersignature and held.consented,
        "countersigned_by": counter.username if counter is not None else None,
        "reconsent_due": (
            {"version": reconsent.version, "required_on": reconsent.required_on} if reconsent is not None else None
        ),
        "withdrawn_on": held.withdrawn_on,
        "continues": list(held.continues),
        "parts": dict(held.choices),
        "copy_sha256": copy,
    }


@router.get(f"{SUBJECT}/consent")
def get_consent(study_id: str, subject_id: str, request: Request, auth: ConsentRead) -> JSONResponse:
    """Where each consent document stands for the subject (signed version, method, countersignature, re-consent
    due, withdrawal, optional parts, signed copy), and the version in force at the subject's site.
    ETag is the subject's consent version, for If-Match on the consent writes."""
    definition = _definition(request, study_id)
    site_id = str(auth.site_id)
    with platform_of(request).engine.connect() as connection:
        state = handlers.read_consent(connection, study_id, subject_id)
    invitation = state.latest_invitation
    body = {
        "subject_id": subject_id,
        "site_id": site_id,
        "version": state.version,
        "participant": {
            "username": state.username,
            "invitation_expires_at": invitation.expires_at if invitation is not None else None,
            "activated": state.username is not None,
        },
        "documents": [
            {
                "document_id": document.id,
                "title": document.title,
                "required_before": document.required_before,
                "in_force": _version_json(_in_force(document, site_id, request)),
                **_standing(state.document(document.id)),
            }
            for document in definition.consent
        ],
    }
    return JSONResponse(body, headers={"ETag": etag(state.version)})


@router.get(f"{SUBJECT}/consent/documents/{{document_id}}")
def get_consent_document(
    study_id: str,
    subject_id: str,
    document_id: DocumentPath,
    request: Request,
    auth: ConsentRead,
    language: LanguageQuery = "en",
) -> dict[str, Any]:
    """The document version in force at the subject's site, to read and sign: its sections, the comprehension
    questions (never their answers) and the optional parts."""
    document = consent_document(_definition(request, study_id), document_id)
    site_id = str(auth.site_id)
    version = _in_force(document, site_id, request)
    if version is None:
        raise NotFound(f"no version of {document_id} is in force at site {site_id}", field="document_id")
    text = text_for(version, document, language)
    return {
        "document_id": document.id,
        "title": document.title,
        "version": version.version,
        "effective": version.effective.isoformat() if version.effective else None,
        "ethics_approval": version.ethics_approval,
        "language": text.language,
        "languages": [t.language for t in version.texts],
        "document_sha256": text.sha256,
        "sections": [
            {"number": s.number, "title": s.title, "markdown": s.markdown} for s in sections_of(document, text)
        ],
        "questions": [
            {"id": q.id, "section": q.section, "text": q.text, "options": list(q.options)} for q in text.questions
        ],
        "optional_parts": [{"id": part.id, "text": part.text} for part in version.optional_parts],
    }


@router.get(
    f"{SUBJECT}/consent/copies/{{sha256}}",
    response_class=Response,
    responses={
        200: {
            "description": "The signed copy (PDF)",
            "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def get_signed_copy(study_id: str, subject_id: str, sha256: CopyPath, request: Request, auth: ConsentRead) -> Response:
    """A signed copy of the subject's consent, by the SHA-256 its signature event holds (PDF)."""
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        content = handlers.signed_copy_pdf(connection, platform.vault, study_id, subject_id, sha256)
    disposition = f'attachment; filename="consent-{subject_id}-{sha256[:12]}.pdf"'
    return Response(content, media_type=PDF, headers={"Content-Disposition": disposition, "ETag": f'"{sha256}"'})


@router.get("/studies/{study_id}/consent-tracker")
def get_consent_tracker(study_id: str, request: Request, auth: TrackerRead) -> dict[str, Any]:
    """Every subject at the user's sites with each document's standing: who signed which version, who must
    re-consent, countersignatures pending, invitations sent and activated."""
    with platform_of(request).engine.connect() as connection:
        rows = tracker_rows(connection, study_id, auth.sites)
    return {
        "rows": rows,
        "summary": {
            "subjects": len({row["subject_id"] for row in rows}),
            "signed": sum(1 for row in rows if row["signed_version"] and not row["withdrawn_on"]),
            "awaiting_countersignature": sum(1 for row in rows if row["awaiting_countersignature"]),
            "reconsent_due": sum(1 for row in rows if row["reconsent_version"]),
            "withdrawn": sum(1 for row in rows if row["withdrawn_on"]),
            "invited_not_activated": len(
                {row["subject_id"] for row in rows if row["invited_at"] and not row["activated_at"]}
            ),
        },
    }


# --- writing ---------------------------------------------------------------------------------------------------


def _events_json(events: list[RecordedEvent]) -> list[dict[str, Any]]:
    return [{"study_seq": e.study_seq, "event_type": e.event_type, "stream_id": e.stream_id} for e in events]


def _consent_version(events: list[RecordedEvent], study_id: str, subject_id: str) -> int | None:
    stream = handlers.stream_id(study_id, subject_id)
    versions = [e.stream_version for e in events if e.stream_type == handlers.CONSENT and e.stream_id == stream]
    return max(versions) if versions else None


def _pinned(uow: UnitOfWork, study_id: str, subject_id: str, pinned: int | None) -> None:
    """If-Match: the subject's consent must still be at the version the client read (GET .../consent ETag)."""
    if pinned is None:
        return
    current = handlers.load_consent(uow, study_id, subject_id).version
    if current != pinned:
        raise PreconditionFailed(
            f"the subject's consent is at version {current}, not {pinned}: reload and try again", field="If-Match"
        )


def _consent_write(
    request: Request,
    auth: Authorized,
    subject_id: str,
    body: Any,
    work: Callable[[UnitOfWork], T],
    answer: Callable[[T], dict[str, Any]],
    status: int = 201,
) -> JSONResponse:
    """One consent command through `execute` (Idempotency-Key, retries, If-Match against the consent version)."""
    pinned = if_match_version(request)

    def run(uow: UnitOfWork) -> T:
        _pinned(uow, auth.study_id, subject_id, pinned)  # reads only: a re-authentication may still come first
        return work(uow)

    def render(result: T, events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        version = _consent_version(events, auth.study_id, subject_id)
        return status, {
            "subject_id": subject_id,
            **({"version": version} if version is not None else {}),
            **answer(result),
            "events": _events_json(events),
        }

    try:
        return execute(platform_of(request), auth.actor, request, body, run, render, pinned_version=pinned is not None)
    except WrongAnswer as wrong:
        return problem(422, "Comprehension answer wrong", wrong.message, wrong.code, wrong.field, section=wrong.section)


def _once(request: Request, actor: Actor, work: Callable[[UnitOfWork], T]) -> tuple[T, list[RecordedEvent]]:
    """A write without Idempotency-Key (its answer must not be stored): one unit of work, retried on a conflict."""
    platform = platform_of(request)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with platform.unit_of_work(actor, request.headers.get("x-request-id")) as uow:
                result = work(uow)
                events = uow.settle()
                uow.commit()
                return result, events
        except ConcurrencyConflict:
            if attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@router.post(f"{SUBJECT}/participant-invitations", status_code=201, responses=WRITE_ERRORS)
def post_participant_invitation(
    study_id: str, subject_id: str, body: InvitationRequest, request: Request, auth: ConsentObtain
) -> JSONResponse:
    """Invite the subject to the participant app. The one-time code is in this answer only (the ledger keeps its
    SHA-256): hand it to the participant. A new invitation replaces the previous code, so Idempotency-Key is not
    honoured here (a replay would have to keep the code); retrying simply issues a fresh code."""
    command = cmd.InviteParticipant(subject_id, body.language, body.valid_hours)
    invited, events = _once(
        request, auth.actor, lambda uow: handlers.invite_participant(uow, study_id, str(auth.site_id), command)
    )
    payload = invited.events[0].payload
    answer = {
        "subject_id": subject_id,
        "invitation_id": payload["invitation_id"],
        "code": invited.code,
        "expires_at": payload["expires_at"],
        "language": payload["language"],
        "events": _events_json(events),
    }
    return JSONResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})


@router.post(
    "/participant-activations", status_code=201, dependencies=[PUBLIC], responses=problem_responses(409, 413, 429)
)
def post_participant_activation(body: ActivationRequest, request: Request) -> JSONResponse:
    """The participant's first visit (no session: the one-time code is the credential): check the code and open
    the participant's account, bound to their subject, in one unit of work. An unknown, used, replaced or expired
    code is refused naming `code`, and nothing is written; failed codes are throttled per client address."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidInput("activate with a JSON body (Content-Type: application/json)", field="Content-Type")
    username = body.username.strip().lower()
    platform = platform_of(request)
    address = request.client.host if request.client is not None else "unknown"
    throttle = login_throttle(request)
    throttle.check(ACTIVATION_THROTTLE_KEY, address, platform.clock.now())

    def work(uow: UnitOfWork) -> handlers.Activation:
        activated = handlers.activate_participant(uow, cmd.ActivateParticipant(body.code, username, body.password))
        identity_handlers.open_participant_account(
            uow,
            identity_commands.OpenParticipantAccount(
                username, body.password, activated.study_id, activated.site_id, activated.subject_id
            ),
        )
        return activated

    try:
        activated, _ = _once(request, Actor(id=f"user:{username}", role=Role.PARTICIPANT.value), work)
    except InvitationRefused:
        throttle.failed(ACTIVATION_THROTTLE_KEY, address, platform.clock.now())
        raise
    answer = {"study_id": activated.study_id, "subject_id": activated.subject_id, "username": username}
    return JSONResponse(answer, status_code=201)


@router.post(f"{SUBJECT}/consent/signatures", status_code=201, responses=WRITE_ERRORS)
def post_consent_signature(
    study_id: str, subject_id: str, body: SignatureRequest, request: Request, auth: ParticipantSelf
) -> JSONResponse:
    """The participant signs the version in force: re-authentication, every section read, every comprehension
    question answered right, Yes or No to each optional part. A wrong answer is 422 naming `answers.<id>` with the
    `section` to read again; a wrong password is recorded (SignatureFailed) and answered 401. The answer holds the
    SHA-256 of the signed copy (GET .../consent/copies/{sha256})."""
    command = cmd.SignConsent(
        subject_id=subject_id,
        document_id=body.document_id,
        version=body.version,
        language=body.language,
        printed_name=body.printed_name,
        sections_read=dict(body.sections_read),
        answers=dict(body.answers),
        choices=dict(body.choices),
        signed_by=body.signed_by,
        representative_relationship=body.representative_relationship,
        witness_name=body.witness_name,
        attempts=dict(body.attempts),
    )
    username = auth.principal.username

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        reauthenticate_for_signature(uow, username, body.password, body.totp)
        return handlers.sign_consent(uow, study_id, username, command)

    def answer(recorded: list[RecordedEvent]) -> dict[str, Any]:
        signed = recorded[-1].payload
        return {
            "document_id": signed["document_id"],
            "signed_version": signed["version"],
            "copy_sha256": signed["copy_sha256"],
            "signed_at": signed["signed_at"],
        }

    return _consent_write(request, auth, subject_id, _without_secrets(body), work, answer)


@router.post(f"{SUBJECT}/consent/countersignatures", status_code=201, responses=WRITE_ERRORS)
def post_consent_countersignature(
    study_id: str, subject_id: str, body: CountersignatureRequest, request: Request, auth: ConsentObtain
) -> JSONResponse:
    """The person who obtained consent signs after the participant (re-authenticated; their printed name and
    role go on the copy). A wrong password is recorded (SignatureFailed) and answered 401."""
    command = cmd.CountersignConsent(subject_id, body.document_id)
    username, role = auth.principal.username, auth.grant.role.value

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        signer = reauthenticate_for_signature(uow, username, body.password, body.totp)
        return handlers.countersign_consent(uow, study_id, username, signer.display_name, role, command)

    def answer(recorded: list[RecordedEvent]) -> dict[str, Any]:
        signed = recorded[-1].payload
        return {"document_id": signed["document_id"], "copy_sha256": signed["copy_sha256"],
                "signed_at": signed["signed_at"]}  # fmt: skip

    return _consent_write(request, auth, subject_id, body.model_copy(update={"password": ""}), work, answer)


@router.post(f"{SUBJECT}/consent/paper", status_code=201, responses=WRITE_ERRORS)
def post_paper_consent(
    study_id: str, subject_id: str, body: PaperConsentRequest, request: Request, auth: ConsentObtain
) -> JSONResponse:
    """Record a consent signed on paper at the site: the version in force on that day, the date, the optional
    parts, and who obtained it (the caller)."""
    command = cmd.RecordPaperConsent(
        subject_id, body.document_id, body.version, body.signed_on, body.language, dict(body.choices)
    )
    obtained_by = (auth.principal.username, auth.principal.display_name)

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        return handlers.record_paper_consent(uow, study_id, str(auth.site_id), obtained_by, command)

    def answer(recorded: list[RecordedEvent]) -> dict[str, Any]:
        return {"document_id": body.document_id, "signed_version": recorded[-1].payload["version"]}

    return _consent_write(request, auth, subject_id, body, work, answer)


@router.post(f"{SUBJECT}/consent/withdrawals", status_code=201, responses=WRITE_ERRORS)
def post_consent_withdrawal(
    study_id: str, subject_id: str, body: ConsentWithdrawalRequest, request: Request, auth: Withdrawing
) -> JSONResponse:
    """Withdraw consent to a document (what goes on, e.g. `safety_follow_up`, in `continues`), or only to an
    optional part; by site staff who obtain consent, or by the participant themself."""
    command = cmd.WithdrawConsent(
        subject_id, body.document_id, body.withdrawn_on, body.reason, body.part, tuple(body.continues)
    )

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        return handlers.withdraw_consent(uow, study_id, command)

    def answer(recorded: list[RecordedEvent]) -> dict[str, Any]:
        withdrawn = recorded[-1].payload
        return {"document_id": withdrawn["document_id"], "part": withdrawn.get("part"),
                "withdrawn_on": withdrawn["withdrawn_on"]}  # fmt: skip

    return _consent_write(request, auth, subject_id, body, work, answer)


def _without_secrets(body: SignatureRequest) -> SignatureRequest:
    """The body as Idempotency-Key fingerprints it: without the password and the names typed (personal data)."""
    return body.model_copy(update={"password": "", "totp": None, "printed_name": "", "witness_name": None})
