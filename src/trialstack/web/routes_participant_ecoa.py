"""The participant's questionnaires (ePRO) in the participant app: what is due today, one question per screen with
Back and Next, a review, then the submission; and what makes the app work without a network.

Online, every step is a plain form post: the answers given so far ride along as hidden fields, and the server
decides which item comes next with the instrument's own `show_if` (`protocol.questionnaire_rules.shown_items`).
The submission goes through the API's executor to `ecoa.handlers.submit_questionnaire`, with a `client_id` made
when the questionnaire was opened, so a double submit is one entry.

Offline, `static/ecoa-offline.js` asks the same questions from the instrument definitions it cached from the API
(`GET .../questionnaires/due`), keeps a completed entry in IndexedDB with the device's time and a `client_id`, and
posts it to the API when the network returns. The service worker (`/participant/sw.js`, scope /participant/) keeps
the app shell, the pages visited and the assets they need; `/participant/questionnaires/offline` is the shell it
falls back to for a questionnaire page it never saw.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import FileResponse, Response
from starlette.datastructures import FormData

from trialstack.api.ecoa_views import Due, due_entries, facts_of, participant_state
from trialstack.api.platform import platform_of
from trialstack.api.routes_ecoa import SubmissionRequest, submission_json
from trialstack.ecoa import commands as cmd
from trialstack.ecoa import handlers
from trialstack.errors import NotFound, TrialStackError
from trialstack.identity.policy import Principal
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import Instrument, InstrumentItem, StudyDefinition
from trialstack.protocol.definition_questionnaires import AnswerType
from trialstack.protocol.questionnaire_rules import answer_problem, compile_instrument, shown_items
from trialstack.protocol.readmodel import version_in_force
from trialstack.web.routes_participant import Me, participant_of
from trialstack.web.routing import redirect, web_router
from trialstack.web.run import run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import env, page

router = web_router(prefix="/participant")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]
STATIC = Path(__file__).resolve().parent / "static"
REVIEW = "__review__"
BASE = "/participant/questionnaires"


def _definition(request: Request, study_id: str) -> StudyDefinition:
    with platform_of(request).engine.connect() as connection:
        version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version.definition


def entry_label(definition: StudyDefinition, entry: str) -> str:
    """`2026-01-05` → `Monday 5 January`; a visit id → its name."""
    try:
        day = date.fromisoformat(entry)
    except ValueError:
        visit = definition.visit(entry)
        return f"Visit: {visit.name}" if visit is not None else entry
    return f"{day:%A} {day.day} {day:%B}"


def clock_time(iso: str | None) -> str:
    """`2026-01-05T18:20:00-06:00` → `2026-01-05 18:20 (UTC-06:00)`; a ledger time → `… UTC`."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    offset = moment.strftime("%z")
    zone = "UTC" if offset in ("+0000", "") else f"UTC{offset[:3]}:{offset[3:]}"
    return f"{moment:%Y-%m-%d %H:%M} ({zone})"


def _due(request: Request, me: Me, definition: StudyDefinition) -> list[Due]:
    """Due now and soon for the participant."""
    with platform_of(request).engine.connect() as connection:
        state = participant_state(connection, me.study_id, me.subject_id)
        facts = facts_of(connection, definition, me.study_id, me.subject_id)
    return due_entries(definition, state, facts, platform_of(request).clock.now())


def due_today(request: Request, me: Me | None) -> dict[str, Any]:
    """For the participant home (a template global): today's open and completed entries, and what opens soon."""
    if me is None:
        return {"open": [], "done": [], "upcoming": []}
    definition = _definition(request, me.study_id)
    due = _due(request, me, definition)

    def label(due: Due) -> dict[str, Any]:
        return {"due": due, "label": entry_label(definition, due.entry.entry)}

    return {
        "open": [label(d) for d in due if d.status == "open"],
        "done": [label(d) for d in due if d.status == "completed"],
        "upcoming": [label(d) for d in due if d.status == "upcoming"],
    }


env.globals.update(ecoa_due_today=due_today)
env.filters.update(clock_time=clock_time)


def _app_context(me: Me) -> dict[str, Any]:
    api = f"/api/v1/studies/{me.study_id}/subjects/{me.subject_id}/questionnaires"
    return {"due_url": f"{api}/due", "submit_url": api}


@router.get("/questionnaires")
def questionnaires(request: Request, principal: User, done: str = "") -> Response:
    """Today's questionnaires: open now, completed (with the device's and the server's times), opening soon; the
    entries this device keeps in its queue are added by the offline script."""
    me = participant_of(principal)
    definition = _definition(request, me.study_id)
    due = _due(request, me, definition)
    rows = [{"due": d, "label": entry_label(definition, d.entry.entry)} for d in due]
    context = {"rows": rows, "done": done, **_app_context(me)}
    return page(request, "participant/questionnaires.html", {"me": me, "errors": {}, **context}, principal=principal)


@router.get("/questionnaires/offline")
def offline_shell(request: Request, principal: User) -> Response:
    """The app shell the service worker keeps: the offline script asks the questionnaire named in the address from
    the definitions it cached, or lists the queue."""
    me = participant_of(principal)
    return page(request, "participant/questionnaire_offline.html", {"me": me, **_app_context(me)}, principal=principal)


@router.get("/sw.js")
def service_worker() -> Response:
    """The service worker, served from /participant/ so that its scope is the participant app."""
    return FileResponse(
        STATIC / "ecoa-sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/participant/"},
    )


# --- one question per screen ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Taker:
    """Who answers and how: the participant on their phone, or on the site tablet (web/routes_ecoa_tablet.py)."""

    study_id: str
    subject_id: str
    principal: Principal
    actor: Actor
    username: str
    mode: str
    action: str
    """Where the question pages post (the instrument and entry follow, for the phone)."""
    done: str
    me: Me | None = None
    app: bool = True
    """Whether the offline module runs on these pages (the phone: yes; the site tablet: no)."""


def phone_taker(me: Me) -> Taker:
    return Taker(me.study_id, me.subject_id, me.principal, me.actor, me.principal.username, "participant", BASE,
                 BASE + "?done={instrument}:{entry}", me)  # fmt: skip


@dataclass(frozen=True)
class Asking:
    taker: Taker
    definition: StudyDefinition
    instrument: Instrument
    due: Due

    @property
    def action(self) -> str:
        if self.taker.mode == "participant":
            return f"{self.taker.action}/{self.instrument.id}/{self.due.entry.entry}"
        return self.taker.action


def asking_for(request: Request, taker: Taker, instrument_id: str, entry: str) -> Asking:
    """The entry to ask, if its window is open now and it is not completed (NotFound otherwise)."""
    definition = _definition(request, taker.study_id)
    with platform_of(request).engine.connect() as connection:
        state = participant_state(connection, taker.study_id, taker.subject_id)
        facts = facts_of(connection, definition, taker.study_id, taker.subject_id)
    due = next(
        (
            d
            for d in due_entries(definition, state, facts, platform_of(request).clock.now())
            if d.instrument.id == instrument_id and d.entry.entry == entry
        ),
        None,
    )
    if due is None:
        raise NotFound(f"{instrument_id} {entry} is not due now", field="entry")
    if due.status == "completed":
        raise NotFound(f"{instrument_id} {entry} is already completed", field="entry")
    if due.status == "upcoming":
        raise NotFound(f"{instrument_id} {entry} opens at {due.entry.opens:%H:%M}", field="entry")
    return Asking(taker, definition, due.instrument, due)


def _shown(instrument: Instrument, answers: dict[str, str]) -> list[InstrumentItem]:
    return shown_items(compile_instrument(instrument), answers)


def _screen(
    request: Request,
    asking: Asking,
    answers: dict[str, str],
    at: str,
    client_id: str,
    errors: dict[str, str] | None = None,
) -> Response:
    shown = _shown(asking.instrument, answers)
    answers = {k: v for k, v in answers.items() if k in {item.id for item in shown}}
    taker = asking.taker
    context: dict[str, Any] = {
        "me": taker.me,
        "taker": taker,
        "instrument": asking.instrument,
        "entry": asking.due.entry,
        "label": entry_label(asking.definition, asking.due.entry.entry),
        "answers": answers,
        "client_id": client_id,
        "errors": errors or {},
        "action": asking.action,
        "due_url": "",
        "submit_url": "",
    }
    if taker.me is not None and taker.app:
        context.update(_app_context(taker.me))
    if at == REVIEW:
        context["shown"] = shown
        name = "participant/questionnaire_review.html"
    else:
        item = next(item for item in shown if item.id == at)
        position = [i.id for i in shown].index(at)
        context.update(item=item, number=position + 1, total=len(shown), first=position == 0)
        name = "participant/questionnaire.html"
    status = 422 if errors else 200
    return page(request, name, context, principal=taker.principal, status_code=status)


def first_screen(request: Request, asking: Asking) -> Response:
    """The first question (a fresh `client_id` for this completion)."""
    first = _shown(asking.instrument, {})[0]
    return _screen(request, asking, {}, first.id, str(uuid.uuid4()))


@router.get("/questionnaires/{instrument_id}/{entry}")
def start(instrument_id: str, entry: str, request: Request, principal: User) -> Response:
    """The first question."""
    return first_screen(request, asking_for(request, phone_taker(participant_of(principal)), instrument_id, entry))


def _posted_answers(instrument: Instrument, posted: FormData) -> tuple[dict[str, str], str]:
    answers = {}
    for item in instrument.items:
        value = posted.get(f"a.{item.id}")
        if isinstance(value, str) and value.strip():
            answers[item.id] = value.strip()
    at = str(posted.get("at", ""))
    if at and at != REVIEW and instrument.item(at) is not None:
        given = [v.strip() for v in posted.getlist("answer") if isinstance(v, str) and v.strip()]
        answers.pop(at, None)
        if given:
            answers[at] = ",".join(given)
    return answers, at


@router.post("/questionnaires/{instrument_id}/{entry}")
def step(instrument_id: str, entry: str, request: Request, principal: User, posted: Posted) -> Response:
    """Next, Back, Change (from the review) or Submit; answers so far travel in the form."""
    taker = phone_taker(participant_of(principal))
    return take_step(request, asking_for(request, taker, instrument_id, entry), posted)


def take_step(request: Request, asking: Asking, posted: FormData) -> Response:
    """One step of the questionnaire: the next screen, the review, or the submission."""
    instrument = asking.instrument
    answers, at = _posted_answers(instrument, posted)
    client_id = str(posted.get("client_id") or uuid.uuid4())
    go = str(posted.get("go", "next"))
    shown = [item.id for item in _shown(instrument, answers)]
    if go.startswith("change:") and go[7:] in shown:
        return _screen(request, asking, answers, go[7:], client_id)
    if go == "submit":
        return _submit(request, asking, answers, client_id, str(posted.get("completed_at") or ""))
    if at not in shown:
        return _screen(request, asking, answers, shown[0], client_id)
    index = shown.index(at)
    if go == "back":
        return _screen(request, asking, answers, shown[max(index - 1, 0)], client_id)
    item = instrument.item(at)
    assert item is not None
    problem = _problem(item, answers.get(at))
    if problem is not None:
        return _screen(request, asking, answers, at, client_id, {f"answers.{at}": problem})
    return _screen(request, asking, answers, shown[index + 1] if index + 1 < len(shown) else REVIEW, client_id)


def _problem(item: InstrumentItem, answer: str | None) -> str | None:
    if answer is None:
        return "Please answer this question to go on." if item.required else None
    return answer_problem(item, answer)


def _submit(request: Request, asking: Asking, answers: dict[str, str], client_id: str, device_time: str) -> Response:
    taker = asking.taker
    now = platform_of(request).clock.now().astimezone(asking.due.entry.opens.tzinfo)
    completed_at = device_time or now.isoformat(timespec="seconds")
    body = SubmissionRequest(
        instrument=asking.instrument.id, entry=asking.due.entry.entry, client_id=client_id, answers=answers,
        completed_at=completed_at, mode=taker.mode,
    )  # fmt: skip
    command = cmd.SubmitQuestionnaire(
        taker.subject_id, body.instrument, body.entry, body.client_id, dict(body.answers), completed_at, taker.mode
    )

    def work(uow: UnitOfWork) -> handlers.Submitted:
        return handlers.submit_questionnaire(uow, taker.study_id, taker.username, command)

    def render(result: handlers.Submitted, events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        return 201, submission_json(result.events)

    try:
        run(request, taker.actor, body, work, render)
    except TrialStackError as error:
        field = error.field or ""
        if field.startswith("answers.") and asking.instrument.item(field[8:]) is not None:
            return _screen(request, asking, answers, field[8:], client_id, {field: error.message})
        return _screen(request, asking, answers, REVIEW, client_id, {"submit": error.message})
    return redirect(request, taker.done.format(instrument=asking.instrument.id, entry=asking.due.entry.entry))


def choice_kind(item: InstrumentItem) -> str:
    """How a screen asks the item: `radio`, `checkbox`, `scale` (0-10 buttons), `number`, `date`, `time`, `text`."""
    low, high = item.bounds
    match item.type:
        case AnswerType.SINGLE_CHOICE:
            return "radio"
        case AnswerType.MULTIPLE_CHOICE:
            return "checkbox"
        case AnswerType.NUMERIC_RATING if high - low <= 10:
            return "scale"
        case AnswerType.NUMERIC_RATING | AnswerType.VISUAL_ANALOGUE:
            return "number"
        case AnswerType.DATE:
            return "date"
        case AnswerType.TIME:
            return "time"
    return "text"


env.filters.update(choice_kind=choice_kind)
