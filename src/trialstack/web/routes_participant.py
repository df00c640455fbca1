"""The participant app: activation with the site's one-time code, the participant's home, reading and signing a
consent document section by section, and their signed copies. Mobile first, no staff navigation.

A participant's account is bound to one subject (`Principal.own_subject`): every page here works on that subject
alone, and nothing in a URL can name another. Reading time is measured on the server: the time between serving a
section and the participant leaving it (Next or Back), kept with the reading progress in a signed cookie bound to
the session, then handed to consent's `sign_consent` as `sections_read`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from trialstack.api.access import actor_for
from trialstack.api.platform import platform_of
from trialstack.api.security import CSRF_COOKIE, SESSION_COOKIE, login_throttle, secure_cookies, session_signer
from trialstack.consent import commands as consent_commands
from trialstack.consent import events as consent_events
from trialstack.consent import handlers as consent
from trialstack.consent.model import PARTICIPANT_MEANING, InvitationRefused, WrongAnswer, sections_of
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound, TrialStackError
from trialstack.identity import commands as identity_commands
from trialstack.identity import handlers as identity
from trialstack.identity.authentication import IDENTITY_SYSTEM, login, reauthenticate_for_signature
from trialstack.identity.credentials import session_key
from trialstack.identity.model import SignatureRejected, TooManyAttempts
from trialstack.identity.policy import Action, Forbidden, Grant, Principal, Role, authorize
from trialstack.identity.readmodel import find_user
from trialstack.identity.sessions import SESSION_MAX_AGE, SessionClaim
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.registry import decode
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import ConsentDocument, ConsentVersion, StudyDefinition
from trialstack.protocol.definition_consent import ConsentText
from trialstack.protocol.readmodel import version_in_force
from trialstack.web.forms import GENERAL, errors_of, text
from trialstack.web.routing import redirect, web_router
from trialstack.web.run import event_summary, run
from trialstack.web.session import current_user, posted_form, session_of
from trialstack.web.templating import page, when

router = web_router(prefix="/participant")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]

PROGRESS_COOKIE = "trialstack_consent"
PROGRESS_MAX_AGE = 24 * 3600
ACTIVATION_KEY = "participant-activation"
"""The sign-in throttle's key for activation attempts (per address): a guessed code counts as a failed sign-in."""
_markdown = MarkdownIt("commonmark", {"html": False})


def render_markdown(source: str) -> Markup:
    """A consent section as HTML: CommonMark with raw HTML disabled (escaped), so the study's text cannot inject."""
    return Markup(_markdown.render(source))


@dataclass(frozen=True)
class Me:
    """The signed-in participant: their study, site and subject, and the grant that makes them one."""

    principal: Principal
    grant: Grant
    study_id: str
    site_id: str
    subject_id: str

    @property
    def actor(self) -> Actor:
        return actor_for(self.principal, self.grant)


def participant_of(principal: Principal) -> Me:
    """The participant behind the session; Forbidden for staff (these pages are a participant's own)."""
    for grant in principal.grants:
        if grant.role is Role.PARTICIPANT and grant.subject_id:
            site = next(iter(sorted(grant.sites)), "")
            authorize(principal, Action.PARTICIPANT_SELF, grant.study_id, site)
            return Me(principal, grant, grant.study_id, site, grant.subject_id)
    raise Forbidden(f"{principal.username} has no participant account: these pages are for study participants")


def _page(request: Request, name: str, context: dict[str, Any], me: Me | None = None, status: int = 200) -> Response:
    values = {"me": me, "errors": {}, **context}
    return page(request, name, values, principal=me.principal if me else None, status_code=status)


def _definition(request: Request, study_id: str) -> StudyDefinition:
    with platform_of(request).engine.connect() as connection:
        version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version.definition


def _language(state: Any) -> str:
    invitation = state.latest_invitation
    return str(invitation.language) if invitation is not None else "en"


def _text(version: ConsentVersion, language: str) -> ConsentText | None:
    return version.text_in(language) or version.text_in("en") or (version.texts[0] if version.texts else None)


@dataclass(frozen=True)
class Copy:
    document_id: str
    version: str
    signed_at: str
    countersigned: bool
    sha256: str


def _copies(request: Request, me: Me) -> list[Copy]:
    """Every signed copy of the subject, newest first: one per signature and one per countersignature."""
    with platform_of(request).engine.connect() as connection:
        recorded = store.read_stream(connection, consent.CONSENT, consent.stream_id(me.study_id, me.subject_id))
    found: list[Copy] = []
    for event in recorded:
        payload = decode(event)
        if isinstance(payload, consent_events.ConsentSigned):
            found.append(Copy(payload.document_id, payload.version, payload.signed_at, False, payload.copy_sha256))
        elif isinstance(payload, consent_events.ConsentCountersigned):
            found.append(Copy(payload.document_id, payload.version, payload.signed_at, True, payload.copy_sha256))
    return list(reversed(found))


@dataclass(frozen=True)
class ToSign:
    document: ConsentDocument
    version: ConsentVersion
    reconsent: bool


def _to_sign(definition: StudyDefinition, state: Any, site_id: str, day: Any) -> tuple[list[ToSign], list[Any]]:
    """Documents with an electronic version in force at the site that the participant has not signed (or must sign
    again), and the documents' standing for the home page."""
    due: list[ToSign] = []
    standing = []
    for document in definition.consent:
        version = document.current_at(site_id, day)
        held = state.document(document.id)
        standing.append((document, version, held))
        if version is None or not version.electronic or held.withdrawn_on is not None:
            continue
        if held.consented and held.signed_version == version.version:
            continue
        due.append(ToSign(document, version, held.signed_version is not None or held.reconsent is not None))
    return due, standing


# --- activation -------------------------------------------------------------------------------------------------


@router.get("/activate")
def activate_page(request: Request, code: str = "") -> Response:
    """The first visit: the one-time code from the site, and the account the participant chooses."""
    return _page(request, "participant/activate.html", {"values": {"code": code, "username": ""}})


def _activate(request: Request, code: str, username: str, password: str) -> consent.Activation:
    """Check the code and open the account in one unit of work: a refusal of either writes nothing."""
    actor = Actor(f"user:{username}", Role.PARTICIPANT.value)

    def work(uow: UnitOfWork) -> consent.Activation:
        activation = consent.activate_participant(uow, consent_commands.ActivateParticipant(code, username, password))
        identity.open_participant_account(
            uow,
            identity_commands.OpenParticipantAccount(
                username, password, activation.study_id, activation.site_id, activation.subject_id
            ),
        )
        return activation

    outcome: dict[str, consent.Activation] = {}

    def render(result: consent.Activation, events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        outcome["activation"] = result
        return event_summary(result, events)

    run(request, actor, None, work, render)
    return outcome["activation"]


def _start_session(request: Request, response: Response, username: str, password: str) -> None:
    """Sign the new participant in as `/login` does: identity's login, the API's session and CSRF cookies."""
    with platform_of(request).unit_of_work(IDENTITY_SYSTEM) as uow:
        result = login(uow, username, password, None)
        uow.commit()
    signer = session_signer(request)
    secure, max_age = secure_cookies(request), int(SESSION_MAX_AGE.total_seconds())
    cookie = signer.dumps(SessionClaim(result.session_id, result.principal.username))
    response.set_cookie(SESSION_COOKIE, cookie, max_age=max_age, httponly=True, secure=secure, samesite="lax")
    csrf = signer.csrf_token(result.session_id)
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, secure=secure, samesite="strict")


@router.post("/activate")
async def activate(request: Request) -> Response:
    """Activate the invitation and open the account, then sign in; every error is shown beside its field."""
    form = await request.form()
    code = text(form, "code") or ""
    username = (text(form, "username") or "").lower()
    password = form.get("password") if isinstance(form.get("password"), str) else ""
    confirm = form.get("confirm") if isinstance(form.get("confirm"), str) else ""
    values = {"code": code, "username": username}
    address = request.client.host if request.client else "?"
    throttle, now = login_throttle(request), platform_of(request).clock.now()
    errors: dict[str, str] = {}
    if not code:
        errors["code"] = "Type the code the study team gave you."
    if not username:
        errors["username"] = "Choose a username."
    if not password:
        errors["password"] = "Choose a password."
    elif password != confirm:
        errors["confirm"] = "The two passwords are not the same."
    if not errors:
        try:
            await run_in_threadpool(throttle.check, ACTIVATION_KEY, address, now)
            await run_in_threadpool(_activate, request, code, username, str(password))
        except TooManyAttempts as error:
            errors = {"code": error.message}
        except InvitationRefused as error:
            await run_in_threadpool(throttle.failed, ACTIVATION_KEY, address, now)
            errors = {"code": error.message}
        except TrialStackError as error:
            errors = errors_of(error)
    if errors:
        context = {"values": values, "errors": errors}
        return _page(request, "participant/activate.html", context, status=422)
    response = redirect(request, "/participant?welcome=1")
    await run_in_threadpool(_start_session, request, response, username, str(password))
    return response


# --- home and copies --------------------------------------------------------------------------------------------


@router.get("")
def home(request: Request, principal: User, welcome: int = 0, signed: str = "") -> Response:
    """The participant's study, what they have to sign, and their signed copies."""
    me = participant_of(principal)
    definition = _definition(request, me.study_id)
    with platform_of(request).engine.connect() as connection:
        state = consent.read_consent(connection, me.study_id, me.subject_id)
        account = find_user(connection, principal.username)
    due, standing = _to_sign(definition, state, me.site_id, platform_of(request).clock.now().date())
    context = {
        "study": definition.study,
        "due": due,
        "standing": standing,
        "copies": _copies(request, me),
        "welcome": welcome,
        "totp": bool(account and account.totp),
    }
    return _page(request, "participant/home.html", context, me)


@router.get("/copies/{sha256}")
def copy_download(sha256: str, request: Request, principal: User) -> Response:
    """One of the participant's own signed copies (PDF); any other hash is not found."""
    me = participant_of(principal)
    copy = next((c for c in _copies(request, me) if c.sha256 == sha256), None)
    if copy is None:
        raise NotFound(f"no signed copy {sha256[:12]} of yours", field="sha256")
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        content = consent.signed_copy_pdf(connection, platform.vault, me.study_id, me.subject_id, sha256)
    name = f"{me.study_id}-{me.subject_id}-{copy.document_id}-{copy.version}-{sha256[:8]}.pdf"
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


# --- second factor ----------------------------------------------------------------------------------------------


@router.get("/security")
def security_page(request: Request, principal: User) -> Response:
    """Whether the account asks for a one-time code at sign-in and signing; turn it on or off."""
    me = participant_of(principal)
    with platform_of(request).engine.connect() as connection:
        account = find_user(connection, principal.username)
    return _page(request, "participant/security.html", {"totp": bool(account and account.totp), "uri": None}, me)


@router.post("/security")
def security_change(request: Request, principal: User, posted: Posted) -> Response:
    """Turn the second factor on (the secret is shown once, to add to an authenticator app) or off."""
    me = participant_of(principal)
    enable = text(posted, "totp") == "on"
    with platform_of(request).unit_of_work(me.actor) as uow:
        uri = identity.set_totp(uow, principal.username, enable)
        uow.commit()
    secret = uri.split("secret=")[1].split("&")[0] if uri and "secret=" in uri else None
    context = {"totp": enable, "uri": uri, "secret": secret}
    return _page(request, "participant/security.html", context, me)


# --- reading and signing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """The document a participant is reading: the version in force at their site and its text in their language."""

    document: ConsentDocument
    version: ConsentVersion
    text: ConsentText
    sections: tuple[Any, ...]

    @property
    def key(self) -> str:
        return f"{self.document.id}/{self.version.version}/{self.text.language}"


def _reading(request: Request, me: Me, document_id: str) -> tuple[Reading, Any]:
    definition = _definition(request, me.study_id)
    with platform_of(request).engine.connect() as connection:
        state = consent.read_consent(connection, me.study_id, me.subject_id)
    due, _ = _to_sign(definition, state, me.site_id, platform_of(request).clock.now().date())
    item = next((d for d in due if d.document.id == document_id), None)
    if item is None:
        raise NotFound(f"there is no consent document {document_id!r} for you to sign", field="document_id")
    text_ = _text(item.version, _language(state))
    if text_ is None:  # _to_sign keeps electronic versions only
        raise NotFound(f"{document_id} has no text to read", field="document_id")
    return Reading(item.document, item.version, text_, sections_of(item.document, text_)), state


def _serializer(request: Request) -> URLSafeTimedSerializer:
    serializer: URLSafeTimedSerializer | None = getattr(request.app.state, "participant_progress_serializer", None)
    if serializer is None:
        engine = platform_of(request).engine
        serializer = URLSafeTimedSerializer(session_key(engine), salt="trialstack.web.consent-progress.v1")
        request.app.state.participant_progress_serializer = serializer
    return serializer


def _progress(request: Request, reading: Reading) -> dict[str, Any]:
    """The reading progress of this session for this document version (fresh when none, or another's)."""
    fresh: dict[str, Any] = {"read": {}, "view": None, "answers": {}, "attempts": {}, "choices": {}, "back": None}
    token = request.cookies.get(PROGRESS_COOKIE)
    if not token:
        return fresh
    try:
        data = _serializer(request).loads(token, max_age=PROGRESS_MAX_AGE)
    except BadSignature:
        return fresh
    if (
        not isinstance(data, dict)
        or data.get("sid") != session_of(request).session_id
        or data.get("key") != reading.key
    ):
        return fresh
    return {**fresh, **{k: v for k, v in data.items() if k in fresh}}


def _keep(request: Request, response: Response, reading: Reading, progress: dict[str, Any]) -> Response:
    data = {**progress, "sid": session_of(request).session_id, "key": reading.key}
    token = _serializer(request).dumps(data)
    response.set_cookie(
        PROGRESS_COOKIE, token, max_age=PROGRESS_MAX_AGE, httponly=True, secure=secure_cookies(request),
        samesite="lax", path="/participant",
    )  # fmt: skip
    return response


def _first_unread(reading: Reading, progress: dict[str, Any]) -> int | None:
    return next((s.number for s in reading.sections if str(s.number) not in progress["read"]), None)


def _base(document_id: str) -> str:
    return f"/participant/consent/{document_id}"


@router.get("/consent/{document_id}")
def consent_start(document_id: str, request: Request, principal: User) -> Response:
    """Where the participant is in the document: the first section not read yet, else the questions."""
    me = participant_of(principal)
    reading, _ = _reading(request, me, document_id)
    unread = _first_unread(reading, _progress(request, reading))
    target = f"/section/{unread}" if unread is not None else "/questions"
    return redirect(request, _base(document_id) + target)


@router.get("/consent/{document_id}/section/{number}")
def section_page(document_id: str, number: int, request: Request, principal: User) -> Response:
    """One section per screen; the time it was shown is kept to measure how long it was read."""
    me = participant_of(principal)
    reading, _ = _reading(request, me, document_id)
    progress = _progress(request, reading)
    numbers = [s.number for s in reading.sections]
    unread = _first_unread(reading, progress)
    if number not in numbers or (unread is not None and number > unread):
        return redirect(request, _base(document_id) + f"/section/{unread or numbers[0]}")
    section = reading.sections[numbers.index(number)]
    progress["view"] = [number, platform_of(request).clock.now().timestamp()]
    back = progress.get("back") or {}
    context = {
        "reading": reading,
        "section": section,
        "html": render_markdown(section.markdown),
        "position": numbers.index(number) + 1,
        "count": len(numbers),
        "message": back.get("message") if back.get("section") == number else None,
        "review": back.get("section") == number,
    }
    response = _page(request, "participant/section.html", context, me)
    return _keep(request, response, reading, progress)


@router.post("/consent/{document_id}/section/{number}")
def section_done(document_id: str, number: int, request: Request, principal: User, posted: Posted) -> Response:
    """Leave a section (Next or Back): the seconds since it was shown are added to its reading time."""
    me = participant_of(principal)
    reading, _ = _reading(request, me, document_id)
    progress = _progress(request, reading)
    numbers = [s.number for s in reading.sections]
    if number not in numbers:
        raise NotFound(f"{document_id} has no section {number}", field="section")
    view = progress.get("view")
    if isinstance(view, list) and len(view) == 2 and view[0] == number:
        seconds = max(0, int(platform_of(request).clock.now().timestamp() - float(view[1])))
        progress["read"][str(number)] = int(progress["read"].get(str(number), 0)) + seconds
    progress["view"] = None
    back = progress.get("back") or {}
    position = numbers.index(number)
    if text(posted, "go") == "back" and position > 0:
        target = f"/section/{numbers[position - 1]}"
    elif back.get("section") == number and str(number) in progress["read"]:
        progress["back"] = None
        unread = _first_unread(reading, progress)
        target = f"/section/{unread}" if unread is not None else "/questions"
    elif str(number) not in progress["read"]:
        target = f"/section/{number}"
    elif position + 1 < len(numbers):
        target = f"/section/{numbers[position + 1]}"
    else:
        target = "/questions"
    return _keep(request, redirect(request, _base(document_id) + target), reading, progress)


def _read_so_far(
    request: Request, principal: Principal, document_id: str
) -> tuple[Me, Reading, dict[str, Any], Response | None]:
    """The participant, the document, their progress, and a redirect to the first unread section (None: all read)."""
    me = participant_of(principal)
    reading, _ = _reading(request, me, document_id)
    progress = _progress(request, reading)
    unread = _first_unread(reading, progress)
    back = redirect(request, _base(document_id) + f"/section/{unread}") if unread is not None else None
    return me, reading, progress, back


def _questions_context(reading: Reading, progress: dict[str, Any]) -> dict[str, Any]:
    return {"reading": reading, "questions": reading.text.questions, "answers": progress["answers"]}


@router.get("/consent/{document_id}/questions")
def questions_page(document_id: str, request: Request, principal: User) -> Response:
    """The comprehension questions, once every section has been read."""
    me, reading, progress, unread = _read_so_far(request, principal, document_id)
    if unread is not None:
        return unread
    if not reading.text.questions:
        return redirect(request, _base(document_id) + "/sign")
    return _page(request, "participant/questions.html", _questions_context(reading, progress), me)


@router.post("/consent/{document_id}/questions")
def questions_done(document_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Keep the answers; they are checked when the participant signs (a wrong one sends them back to its section)."""
    me = participant_of(principal)
    reading, _ = _reading(request, me, document_id)
    progress = _progress(request, reading)
    errors: dict[str, str] = {}
    for question in reading.text.questions:
        answer = text(posted, f"answers.{question.id}")
        if answer is None:
            errors[f"answers.{question.id}"] = "Choose an answer."
        else:
            progress["answers"][question.id] = answer
    if errors:
        context = {**_questions_context(reading, progress), "errors": errors}
        response = _page(request, "participant/questions.html", context, me, status=422)
        return _keep(request, response, reading, progress)
    return _keep(request, redirect(request, _base(document_id) + "/sign"), reading, progress)


def _sign_context(request: Request, me: Me, reading: Reading, progress: dict[str, Any]) -> dict[str, Any]:
    with platform_of(request).engine.connect() as connection:
        account = find_user(connection, me.principal.username)
    now = platform_of(request).clock.now().strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "reading": reading,
        "parts": reading.version.optional_parts,
        "choices": progress["choices"],
        "meaning": PARTICIPANT_MEANING,
        "now": when(now),
        "totp": bool(account and account.totp),
        "printed_name": "",
        "signed_by": "participant",
        "relationship": "",
        "witness_name": "",
    }


@router.get("/consent/{document_id}/sign")
def sign_page(document_id: str, request: Request, principal: User) -> Response:
    """The optional parts (Yes or No), the typed full name, and the password to sign."""
    me, reading, progress, unread = _read_so_far(request, principal, document_id)
    if unread is not None:
        return unread
    if any(q.id not in progress["answers"] for q in reading.text.questions):
        return redirect(request, _base(document_id) + "/questions")
    return _page(request, "participant/sign.html", _sign_context(request, me, reading, progress), me)


def _sections_field(error: TrialStackError) -> int | None:
    field = error.field or ""
    if field.startswith("sections_read.") and field.split(".", 1)[1].isdigit():
        return int(field.split(".", 1)[1])
    return None


@router.post("/consent/{document_id}/sign")
def sign(document_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Re-authenticate and sign in one unit of work (identity, then consent's `sign_consent`)."""
    me = participant_of(principal)
    reading, _ = _reading(request, me, document_id)
    progress = _progress(request, reading)
    base = _base(document_id)
    choices: dict[str, bool] = {}
    for part in reading.version.optional_parts:
        given = text(posted, f"choices.{part.id}")
        if given in ("yes", "no"):
            choices[part.id] = given == "yes"
    progress["choices"] = choices
    printed_name = text(posted, "printed_name") or ""
    password = posted.get("password")
    totp = text(posted, "totp")
    command = consent_commands.SignConsent(
        subject_id=me.subject_id,
        document_id=reading.document.id,
        version=reading.version.version,
        language=reading.text.language,
        printed_name=printed_name,
        sections_read={int(n): int(s) for n, s in progress["read"].items()},
        answers=dict(progress["answers"]),
        choices=choices,
        attempts={q: int(n) for q, n in progress["attempts"].items()},
        signed_by=text(posted, "signed_by") or "participant",
        representative_relationship=text(posted, "representative_relationship"),
        witness_name=text(posted, "witness_name"),
    )

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        reauthenticate_for_signature(uow, me.principal.username, password if isinstance(password, str) else "", totp)
        return consent.sign_consent(uow, me.study_id, me.principal.username, command)

    try:
        run(request, me.actor, None, work, event_summary)
    except WrongAnswer as error:
        question = (error.field or "").split(".", 1)[-1]
        progress["attempts"][question] = int(progress["attempts"].get(question, 1)) + 1
        progress["answers"].pop(question, None)
        message = f"{error.message}. Then answer the question again."
        progress["back"] = {"section": error.section, "message": message}
        return _keep(request, redirect(request, f"{base}/section/{error.section}"), reading, progress)
    except (SignatureRejected, TooManyAttempts) as error:
        return _sign_error(request, me, reading, progress, {"password": error.message}, printed_name, posted)
    except DomainRuleViolation as error:
        unread = _sections_field(error)
        if unread is not None:
            progress["read"].pop(str(unread), None)
            return _keep(request, redirect(request, f"{base}/section/{unread}"), reading, progress)
        return _sign_error(request, me, reading, progress, errors_of(error), printed_name, posted)
    except (InvalidInput, TrialStackError) as error:
        if (error.field or "").startswith("answers."):
            return _keep(request, redirect(request, f"{base}/questions"), reading, progress)
        return _sign_error(request, me, reading, progress, errors_of(error), printed_name, posted)
    response = redirect(request, f"{base}/signed")
    response.delete_cookie(PROGRESS_COOKIE, path="/participant")
    return response


def _sign_error(
    request: Request,
    me: Me,
    reading: Reading,
    progress: dict[str, Any],
    errors: dict[str, str],
    printed_name: str,
    posted: FormData,
) -> Response:
    context = {**_sign_context(request, me, reading, progress), "errors": errors, "printed_name": printed_name}
    context.update(
        signed_by=text(posted, "signed_by") or "participant",
        relationship=text(posted, "representative_relationship") or "",
        witness_name=text(posted, "witness_name") or "",
    )
    if GENERAL in errors and "password" not in errors and "printed_name" not in errors:
        context["general"] = errors[GENERAL]
    response = _page(request, "participant/sign.html", context, me, status=422)
    return _keep(request, response, reading, progress)


@router.get("/consent/{document_id}/signed")
def signed_page(document_id: str, request: Request, principal: User) -> Response:
    """The confirmation: what was signed, when, and the signed copy to download."""
    me = participant_of(principal)
    with platform_of(request).engine.connect() as connection:
        state = consent.read_consent(connection, me.study_id, me.subject_id)
    held = state.document(document_id)
    if held.signature is None:
        raise NotFound(f"you have not signed {document_id}", field="document_id")
    sha256 = held.countersignature.copy_sha256 if held.countersignature else held.signature.copy_sha256
    definition = _definition(request, me.study_id)
    document = definition.consent_document(document_id)
    context = {"signature": held.signature, "document": document, "sha256": sha256}
    return _page(request, "participant/signed.html", context, me)
