"""eCOA endpoints (ePRO): what a participant has due and the instruments to ask it (offline too), submitting a
completed questionnaire (idempotent by the device's `client_id`), a subject's entries with scores, the site's alerts
and their acknowledgement, and the participant's time zone.

Two kinds of caller, as for consent: site staff (ECOA_READ, ECOA_ADMINISTER on a site tablet, ECOA_ALERT_ACKNOWLEDGE)
at the subject's site, and the participant for their own subject (PARTICIPANT_SELF); another subject is 404.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from trialstack.api.access import subject_site_of
from trialstack.api.commands import execute
from trialstack.api.ecoa_views import due_entries, facts_of, instrument_json, participant_state, subject_entries
from trialstack.api.openapi import AUTHENTICATED_ERRORS, WRITE_ERRORS
from trialstack.api.platform import platform_of
from trialstack.api.routes_consent import own_subject_site_of, requires_any
from trialstack.api.schemas import Body
from trialstack.api.security import Authorized, requires
from trialstack.ecoa import commands as cmd
from trialstack.ecoa import handlers
from trialstack.ecoa.readmodel import open_alerts, subject_alerts
from trialstack.errors import InvalidInput, NotFound
from trialstack.identity.policy import Action, Forbidden
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.readmodel import version_in_force

router = APIRouter(prefix="/api/v1/studies/{study_id}", tags=["ecoa"], responses=AUTHENTICATED_ERRORS)
SUBJECT = "/subjects/{subject_id}"

EcoaRead = Annotated[Authorized, requires_any(Action.ECOA_READ, Action.PARTICIPANT_SELF)]
Submitting = Annotated[Authorized, requires_any(Action.PARTICIPANT_SELF, Action.ECOA_ADMINISTER)]
ParticipantSelf = Annotated[Authorized, requires(Action.PARTICIPANT_SELF, site=own_subject_site_of)]
AlertsRead = Annotated[Authorized, requires(Action.ECOA_READ, site=None)]
Acknowledging = Annotated[Authorized, requires(Action.ECOA_ALERT_ACKNOWLEDGE, site=subject_site_of)]
AlertPath = Annotated[str, Path(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$", description="A clinical alert (PHQ9-ITEM9)")]

InstrumentId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$", description="An instrument (PHQ9)")]
EntryId = Annotated[
    str, Field(min_length=1, max_length=40, description="The visit (DAY1) or the diary day (2026-01-05)")
]
ClientId = Annotated[
    str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="A UUID made on the device")
]


ItemId = Annotated[str, Field(min_length=1, max_length=40)]
AnswerText = Annotated[str, Field(max_length=4000)]


class SubmissionRequest(Body):
    """A completed instrument. `completed_at` is the device's time with its UTC offset; `answers` are the codes and
    numbers chosen, as text, for the items that were asked (skipped items left out)."""

    instrument: InstrumentId
    entry: EntryId
    client_id: ClientId
    answers: dict[ItemId, AnswerText] = Field(max_length=200)
    completed_at: str = Field(min_length=1, max_length=40, description="ISO date-time with offset")
    mode: Literal["participant", "site_tablet"] = "participant"


class AcknowledgementRequest(Body):
    client_id: ClientId = Field(description="The submission that raised the alert")
    note: str = Field(min_length=1, max_length=4000, description="What was done")


class TimeZoneRequest(Body):
    time_zone: str = Field(min_length=1, max_length=64, description="An IANA time zone (America/Chicago)")


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _definition(request: Request, study_id: str) -> StudyDefinition:
    with platform_of(request).engine.connect() as connection:
        version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version.definition


def _events_json(events: list[RecordedEvent]) -> list[dict[str, Any]]:
    return [{"study_seq": e.study_seq, "event_type": e.event_type, "stream_id": e.stream_id} for e in events]


@router.get(f"{SUBJECT}/questionnaires/due")
def get_due(study_id: str, subject_id: str, request: Request, auth: EcoaRead) -> dict[str, Any]:
    """Entries open now or opening within a day (window in the participant's time zone, ISO with offset), those
    completed since yesterday, and the definitions of their instruments, to ask them without a network."""
    definition = _definition(request, study_id)
    now = platform_of(request).clock.now()
    with platform_of(request).engine.connect() as connection:
        state = participant_state(connection, study_id, subject_id)
        facts = facts_of(connection, definition, study_id, subject_id)
    due = due_entries(definition, state, facts, now)
    instruments = {d.instrument.id: d.instrument for d in due}
    return {
        "subject_id": subject_id,
        "site_id": facts.site_id,
        "time_zone": state.zone(facts).key,
        "now": now.astimezone(state.zone(facts)).isoformat(timespec="seconds"),
        "entries": [d.as_json() for d in due],
        "instruments": {key: instrument_json(value) for key, value in sorted(instruments.items())},
    }


@router.get(f"{SUBJECT}/questionnaires")
def get_questionnaires(study_id: str, subject_id: str, request: Request, auth: EcoaRead) -> dict[str, Any]:
    """Every expected entry up to today and every entry received: status (completed, missed, due, upcoming), the
    device's completion time, the server's receipt time, mode and scores; and the subject's alerts."""
    definition = _definition(request, study_id)
    now = platform_of(request).clock.now()
    with platform_of(request).engine.connect() as connection:
        rows = subject_entries(connection, definition, study_id, subject_id, now)
        alerts = subject_alerts(connection, study_id, subject_id)
    return {"subject_id": subject_id, "entries": rows, "alerts": [_alert_json(a) for a in alerts]}


def _alert_json(row: dict[str, Any]) -> dict[str, Any]:
    key = str(row["alert_key"])
    kind, _, rest = key.partition(":")
    alert, _, client_id = rest.partition(":") if kind == "clinical" else (None, "", None)
    return {
        "subject_id": row["subject_id"],
        "site_id": row["site_id"],
        "kind": row["kind"],
        "alert": alert,
        "client_id": client_id,
        "instrument": row["instrument"],
        "message": row["message"],
        "raised_at": row["raised_at"],
        "acknowledged_by": row["acknowledged_by"],
        "acknowledged_at": row["acknowledged_at"],
        "note": row["note"],
    }


@router.get("/ecoa/alerts")
def get_alerts(study_id: str, request: Request, auth: AlertsRead) -> dict[str, Any]:
    """Open eCOA alerts at the user's sites, newest first: clinical alerts not yet acknowledged, missed diary
    entries and low compliance."""
    with platform_of(request).engine.connect() as connection:
        rows = open_alerts(connection, study_id, auth.sites)
    return {"alerts": [_alert_json(row) for row in rows]}


def submission_json(events: list[RecordedEvent]) -> dict[str, Any]:
    """What a submission recorded: times, scores and the clinical alerts it raised."""
    submitted = next(e.payload for e in events if e.event_type == "QuestionnaireSubmitted")
    scored = next((e.payload for e in events if e.event_type == "QuestionnaireScored"), None)
    return {
        "instrument": submitted["instrument"],
        "entry": submitted["entry"],
        "client_id": submitted["client_id"],
        "completed_at": submitted["completed_at"],
        "received_at": submitted["received_at"],
        "time_zone": submitted["time_zone"],
        "mode": submitted["mode"],
        "username": submitted["username"],
        "scores": [{"score": s["score"], "value": s["value"], "missing": s["missing"]} for s in scored["scores"]]
        if scored
        else [],
        "alerts": [
            {"alert": e.payload["alert"], "message": e.payload["message"]}
            for e in events
            if e.event_type == "ClinicalAlertRaised"
        ],
    }


def submit(request: Request, auth: Authorized, subject_id: str, body: SubmissionRequest, username: str) -> JSONResponse:
    """Run `submit_questionnaire` through the API's executor; 201, or 200 with the first answer for a resend."""
    command = cmd.SubmitQuestionnaire(
        subject_id, body.instrument, body.entry, body.client_id, dict(body.answers), body.completed_at, body.mode
    )

    def work(uow: UnitOfWork) -> handlers.Submitted:
        return handlers.submit_questionnaire(uow, auth.study_id, username, command)

    def render(result: handlers.Submitted, events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        return (200 if result.repeated else 201), {
            "subject_id": subject_id,
            "repeated": result.repeated,
            **submission_json(result.events),
            "events": _events_json(events),
        }

    return execute(platform_of(request), auth.actor, request, body, work, render)


@router.post(f"{SUBJECT}/questionnaires", status_code=201, responses=WRITE_ERRORS)
def post_questionnaire(
    study_id: str, subject_id: str, body: SubmissionRequest, request: Request, auth: Submitting
) -> JSONResponse:
    """Submit a completed questionnaire: by the participant (their phone, or a site tablet handed to them), or by
    site staff who administer it on the site tablet (`mode: site_tablet`). Scored, clinical alerts raised; a
    resend with the same `client_id` answers 200 with the first result and writes nothing. A refusal names its
    field: `answers.ITEM`, `entry` (not due: when it opens), `completed_at` (outside the window: the window)."""
    if auth.action is Action.ECOA_ADMINISTER and body.mode != "site_tablet":
        raise Forbidden("site staff submit a questionnaire only on the site tablet (mode site_tablet)", field="mode")
    return submit(request, auth, subject_id, body, auth.principal.username)


@router.post(f"{SUBJECT}/ecoa/alerts/{{alert}}/acknowledgement", status_code=201, responses=WRITE_ERRORS)
def post_acknowledgement(
    study_id: str, subject_id: str, alert: AlertPath, body: AcknowledgementRequest, request: Request,
    auth: Acknowledging,
) -> JSONResponse:  # fmt: skip
    """The investigator acknowledges a clinical alert with a note of what was done."""
    command = cmd.AcknowledgeClinicalAlert(subject_id, alert, body.client_id, body.note)
    username = auth.principal.username

    def render(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        payload = recorded[-1].payload
        return 201, {"subject_id": subject_id, "alert": payload["alert"], "client_id": payload["client_id"],
                     "acknowledged_by": payload["username"], "note": payload["note"],
                     "events": _events_json(events)}  # fmt: skip

    return execute(
        platform_of(request), auth.actor, request, body,
        lambda uow: handlers.acknowledge_alert(uow, study_id, username, command), render,
    )  # fmt: skip


@router.put(f"{SUBJECT}/questionnaires/time-zone", responses=WRITE_ERRORS)
def put_time_zone(
    study_id: str, subject_id: str, body: TimeZoneRequest, request: Request, auth: ParticipantSelf
) -> JSONResponse:
    """The participant's time zone (IANA), e.g. after moving: diary windows are counted in it from now on."""
    if body.time_zone not in _zones():
        raise InvalidInput(f"unknown time zone {body.time_zone!r} (an IANA name such as Europe/Berlin)",
                           field="time_zone")  # fmt: skip
    command = cmd.SetTimeZone(subject_id, body.time_zone)

    def render(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        return 200, {"subject_id": subject_id, "time_zone": body.time_zone, "changed": bool(recorded),
                     "events": _events_json(events)}  # fmt: skip

    return execute(
        platform_of(request), auth.actor, request, body,
        lambda uow: handlers.set_time_zone(uow, study_id, command), render,
    )  # fmt: skip
