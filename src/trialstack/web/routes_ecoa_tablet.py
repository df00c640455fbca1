"""The site tablet: a coordinator (ECOA_ADMINISTER) hands the tablet to the participant for a visit questionnaire
due today, in their own signed-in session.

- A participant with an account confirms with their own password (identity's re-authentication, as the
  participant): the submission is theirs (`username` = the participant, mode `site_tablet`).
- A participant without an account: the coordinator attests the handover on the subject's page; the submission is
  recorded as the coordinator's (mode `site_tablet`), which is what it is.

While the tablet is handed over (a signed cookie bound to the session), the session shows only that questionnaire:
every other page of the site redirects to it (`TabletGuard`), sign-out included. Taking the tablet back asks for the
coordinator's password (re-authentication as the coordinator).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from trialstack.api.access import actor_for, authorize_subject
from trialstack.api.platform import platform_of
from trialstack.api.security import SESSION_COOKIE, secure_cookies, session_signer
from trialstack.ecoa.readmodel import subject_facts_row
from trialstack.errors import InvalidInput, NotFound, TrialStackError
from trialstack.identity.authentication import reauthenticate_for_signature
from trialstack.identity.credentials import session_key
from trialstack.identity.model import SignatureRejected
from trialstack.identity.policy import Action, Principal, Role
from trialstack.ledger.envelope import Actor
from trialstack.web.routes_participant_ecoa import Taker, asking_for, first_screen, take_step
from trialstack.web.routing import redirect, web_router
from trialstack.web.session import current_user, posted_form, session_of
from trialstack.web.templating import page

router = web_router()
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]
COOKIE = "trialstack_tablet"
MAX_AGE = 4 * 3600
ALLOWED = ("/tablet", "/static/", "/health")


@dataclass(frozen=True)
class Handover:
    session_id: str
    study_id: str
    subject_id: str
    site_id: str
    instrument: str
    entry: str
    coordinator: str
    participant: str | None
    """The participant's username when they have an account (they confirm with their password); None: attested."""
    confirmed: bool


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(session_key(platform_of(request).engine), salt="trialstack-ecoa-tablet")


def _session_id(request: Request) -> str | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    claim = session_signer(request).loads(cookie) if cookie else None
    return claim.session_id if claim is not None else None


def handover_of(request: Request) -> Handover | None:
    """The tablet handed over in this session, if any (a cookie of another or an ended session counts for nothing)."""
    text = request.cookies.get(COOKIE)
    if not text:
        return None
    try:
        data = _serializer(request).loads(text, max_age=MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("session_id") != _session_id(request):
        return None
    return Handover(**data)


def _keep(request: Request, response: Response, handover: Handover) -> Response:
    response.set_cookie(
        COOKIE, _serializer(request).dumps(asdict(handover)), max_age=MAX_AGE, httponly=True, samesite="lax",
        secure=secure_cookies(request), path="/",
    )  # fmt: skip
    return response


class TabletGuard:
    """While the tablet is handed over, every page but the tablet's (and the assets) goes to the tablet."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(ALLOWED):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if COOKIE in request.cookies and handover_of(request) is not None:
            await RedirectResponse("/tablet", status_code=303)(scope, receive, send)
            return
        await self.app(scope, receive, send)


# --- handing over -----------------------------------------------------------------------------------------------


@router.post("/studies/{study_id}/subjects/{subject_id}/questionnaires/tablet")
def hand_over(study_id: str, subject_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Hand the tablet to the participant for a visit questionnaire open now."""
    with platform_of(request).engine.connect() as connection:
        grant, site_id = authorize_subject(connection, principal, Action.ECOA_ADMINISTER, study_id, subject_id)
        row = subject_facts_row(connection, study_id, subject_id)
    instrument, entry = str(posted.get("instrument", "")), str(posted.get("entry", ""))
    participant = row["username"] if row else None
    coordinator = Taker(study_id, subject_id, principal, actor_for(principal, grant), principal.username,
                        "site_tablet", "/tablet/questionnaire", "/tablet/done")  # fmt: skip
    asking = asking_for(request, coordinator, instrument, entry)
    if asking.due.entry.diary:
        raise InvalidInput("the diary is the participant's own, on their phone", field="instrument")
    if participant is None and posted.get("attest") != "yes":
        raise InvalidInput("the participant has no account: attest that you hand the tablet to them", field="attest")
    handover = Handover(session_of(request).session_id, study_id, subject_id, site_id, instrument, entry,
                        principal.username, participant, confirmed=participant is None)  # fmt: skip
    return _keep(request, redirect(request, "/tablet"), handover)


def _handover(request: Request) -> Handover:
    handover = handover_of(request)
    if handover is None:
        raise NotFound("the tablet is not handed over in this session", field="tablet")
    return handover


def _taker(request: Request, principal: Principal, handover: Handover) -> Taker:
    if handover.participant is not None:
        actor = Actor(f"user:{handover.participant}", Role.PARTICIPANT.value)
        username = handover.participant
    else:
        with platform_of(request).engine.connect() as connection:
            grant, _ = authorize_subject(
                connection, principal, Action.ECOA_ADMINISTER, handover.study_id, handover.subject_id
            )
        actor, username = actor_for(principal, grant), principal.username
    return Taker(handover.study_id, handover.subject_id, principal, actor, username, "site_tablet",
                 "/tablet/questionnaire", "/tablet/done", app=False)  # fmt: skip


def _page(request: Request, name: str, handover: Handover, status: int = 200, **context: Any) -> Response:
    values = {"me": None, "handover": handover, "errors": {}, **context}
    return page(request, name, values, status_code=status)


@router.get("/tablet")
def tablet(request: Request, principal: User) -> Response:
    """The participant's confirmation, or straight to the questionnaire (attested handover, or confirmed)."""
    handover = _handover(request)
    if handover.confirmed:
        return redirect(request, "/tablet/questionnaire")
    return _page(request, "ecoa/tablet_confirm.html", handover)


@router.post("/tablet/confirm")
def confirm(request: Request, principal: User, posted: Posted) -> Response:
    """The participant confirms with their own password (re-authentication as the participant)."""
    handover = _handover(request)
    if handover.participant is None:
        return redirect(request, "/tablet/questionnaire")
    actor = Actor(f"user:{handover.participant}", Role.PARTICIPANT.value)
    try:
        with platform_of(request).unit_of_work(actor) as uow:
            reauthenticate_for_signature(uow, handover.participant, str(posted.get("password", "")))
            uow.commit()
    except SignatureRejected as rejected:
        return _page(request, "ecoa/tablet_confirm.html", handover, 401, errors={"password": rejected.message})
    confirmed = Handover(**{**asdict(handover), "confirmed": True})
    return _keep(request, redirect(request, "/tablet/questionnaire"), confirmed)


@router.get("/tablet/questionnaire")
def tablet_questionnaire(request: Request, principal: User) -> Response:
    handover = _handover(request)
    if not handover.confirmed:
        return redirect(request, "/tablet")
    asking = asking_for(request, _taker(request, principal, handover), handover.instrument, handover.entry)
    return first_screen(request, asking)


@router.post("/tablet/questionnaire")
def tablet_step(request: Request, principal: User, posted: Posted) -> Response:
    handover = _handover(request)
    if not handover.confirmed:
        return redirect(request, "/tablet")
    asking = asking_for(request, _taker(request, principal, handover), handover.instrument, handover.entry)
    return take_step(request, asking, posted)


@router.get("/tablet/done")
def tablet_done(request: Request, principal: User) -> Response:
    return _page(request, "ecoa/tablet_done.html", _handover(request))


@router.get("/tablet/return")
def return_page(request: Request, principal: User) -> Response:
    return _page(request, "ecoa/tablet_return.html", _handover(request))


@router.post("/tablet/return")
def take_back(request: Request, principal: User, posted: Posted) -> Response:
    """The coordinator takes the tablet back with their password; the session is theirs again."""
    handover = _handover(request)
    with platform_of(request).engine.connect() as connection:
        grant, _ = authorize_subject(
            connection, principal, Action.ECOA_ADMINISTER, handover.study_id, handover.subject_id
        )
    try:
        with platform_of(request).unit_of_work(actor_for(principal, grant)) as uow:
            reauthenticate_for_signature(uow, principal.username, str(posted.get("password", "")))
            uow.commit()
    except TrialStackError as rejected:
        return _page(request, "ecoa/tablet_return.html", handover, 401, errors={"password": rejected.message})
    target = f"/studies/{handover.study_id}/subjects/{handover.subject_id}/questionnaires"
    response = redirect(request, target)
    response.delete_cookie(COOKIE, path="/")
    return response
