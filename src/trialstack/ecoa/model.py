"""A participant's questionnaires, folded from their `ecoa` stream, and the decisions on them. Pure.

Time is an input (`now`), and so is what other contexts told us: the subject's site, status and visit dates
(capture's events, kept in ecoa's read model) and their consent (`consent.events.ConsentView`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trialstack.clock import utc_timestamp
from trialstack.consent.events import ConsentView, gate_refusal
from trialstack.ecoa import commands as cmd
from trialstack.ecoa import events as ev
from trialstack.ecoa.schedule import Entry, diary_entries, find_entry
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.protocol.definition import GatedAction, Instrument, StudyDefinition
from trialstack.protocol.questionnaire_rules import alerts, answer_problem, compile_instrument, score, shown_items

MODES = ("participant", "site_tablet")
ON_STUDY = ("screening", "enrolled")


class QuestionnaireRefused(DomainRuleViolation):
    code = "questionnaire-refused"


@dataclass(frozen=True)
class SubjectFacts:
    """What ecoa knows of the subject from other contexts' events (its read model)."""

    site_id: str
    status: str
    site_time_zone: str
    visit_dates: Mapping[str, date]


@dataclass(frozen=True)
class Submission:
    client_id: str
    completed_at: str
    received_at: str


@dataclass(frozen=True)
class Participant:
    study_id: str
    subject_id: str
    time_zone: str | None = None
    submissions: Mapping[tuple[str, str], Submission] = field(default_factory=lambda: MappingProxyType({}))
    clients: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    missed: frozenset[tuple[str, str]] = frozenset()
    alerts: Mapping[tuple[str, str], bool] = field(default_factory=lambda: MappingProxyType({}))
    """(alert, client id) → acknowledged."""
    compliance_alerted: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """instrument → the day of its last compliance alert."""
    version: int = 0

    def zone(self, facts: SubjectFacts) -> ZoneInfo:
        return ZoneInfo(self.time_zone or facts.site_time_zone)


def evolve(event: ev.EcoaEvent, state: Participant) -> Participant:
    match event:
        case ev.QuestionnaireSubmitted():
            key = (event.instrument, event.entry)
            submissions = {**state.submissions, key: Submission(event.client_id, event.completed_at, event.received_at)}
            clients = {**state.clients, event.client_id: key}
            return replace(state, submissions=MappingProxyType(submissions), clients=MappingProxyType(clients))
        case ev.DiaryEntryMissed():
            return replace(state, missed=state.missed | {(event.instrument, event.entry)})
        case ev.ClinicalAlertRaised():
            return replace(state, alerts=MappingProxyType({**state.alerts, (event.alert, event.client_id): False}))
        case ev.ClinicalAlertAcknowledged():
            return replace(state, alerts=MappingProxyType({**state.alerts, (event.alert, event.client_id): True}))
        case ev.ComplianceAlertRaised():
            alerted = {**state.compliance_alerted, event.instrument: event.as_of}
            return replace(state, compliance_alerted=MappingProxyType(alerted))
        case ev.ParticipantTimeZoneSet():
            return replace(state, time_zone=event.time_zone)
    return state


def instrument_of(definition: StudyDefinition, instrument_id: str) -> Instrument:
    instrument = definition.instrument(instrument_id)
    if instrument is None:
        known = ", ".join(i.id for i in definition.questionnaires.instruments) if definition.questionnaires else "none"
        raise NotFound(f"no instrument {instrument_id!r} in this study (instruments: {known})", field="instrument")
    return instrument


def consent_refusal(definition: StudyDefinition, consent: ConsentView, day: date) -> str | None:
    """Why questionnaires are refused by the subject's consent (None: allowed)."""
    return gate_refusal(definition, consent, GatedAction.QUESTIONNAIRES, day, "questionnaires")


def _completed_at(text: str, entry: Entry, now: datetime, skew_minutes: int) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"completed_at {text!r} is not an ISO date-time", field="completed_at") from None
    if moment.tzinfo is None:
        raise InvalidInput("completed_at needs the device's UTC offset (e.g. 2026-03-04T19:05:00-05:00)",
                           field="completed_at")  # fmt: skip
    ahead = moment - now
    if ahead > timedelta(minutes=skew_minutes):
        raise QuestionnaireRefused(
            f"the device's time {text} is {int(ahead.total_seconds() // 60)} minutes ahead of the server "
            f"(tolerance {skew_minutes} minutes)",
            field="completed_at",
        )
    if not entry.opens <= moment <= entry.closes:
        raise QuestionnaireRefused(
            f"{entry.instrument} {entry.entry} was completed at {text}, outside its window {entry.window_text()}",
            field="completed_at",
        )
    return moment


def _answers(instrument: Instrument, given: Mapping[str, str]) -> list[ev.Answer]:
    unknown = sorted(set(given) - {item.id for item in instrument.items})
    if unknown:
        raise InvalidInput(f"{instrument.id} has no item {unknown[0]}", field=f"answers.{unknown[0]}")
    answers = {key: value.strip() for key, value in given.items() if value is not None and value.strip() != ""}
    shown = shown_items(compile_instrument(instrument), answers)
    shown_ids = {item.id for item in shown}
    for item_id in answers:
        if item_id not in shown_ids:
            raise InvalidInput(f"{item_id} is not asked with these answers (its show_if is false)",
                               field=f"answers.{item_id}")  # fmt: skip
    for item in shown:
        if item.id not in answers:
            if item.required:
                raise InvalidInput(f"{item.id} is required: {item.text}", field=f"answers.{item.id}")
            continue
        problem = answer_problem(item, answers[item.id])
        if problem is not None:
            raise InvalidInput(problem, field=f"answers.{item.id}")
    return [ev.Answer(item=item.id, value=answers[item.id]) for item in instrument.items if item.id in answers]


def decide_submit(
    state: Participant,
    definition: StudyDefinition,
    facts: SubjectFacts,
    consent: ConsentView,
    command: cmd.SubmitQuestionnaire,
    username: str,
    now: datetime,
    study_version: str,
) -> list[ev.EcoaEvent]:
    """The submission with its scores and alerts; [] when `client_id` was already received (a resend)."""
    instrument = instrument_of(definition, command.instrument)
    if command.client_id in state.clients:
        return []
    if not 8 <= len(command.client_id) <= 64:
        raise InvalidInput("client_id takes 8 to 64 characters (a UUID made on the device)", field="client_id")
    if command.mode not in MODES:
        raise InvalidInput(f"mode is one of {', '.join(MODES)}", field="mode")
    if facts.status not in ON_STUDY:
        raise QuestionnaireRefused(f"subject {state.subject_id} is {facts.status.replace('_', ' ')}", field="subject")
    zone = state.zone(facts)
    today = now.astimezone(zone).date()
    refused = consent_refusal(definition, consent, today)
    if refused is not None:
        raise QuestionnaireRefused(refused, field="consent")
    entry = find_entry(instrument, command.entry, facts.visit_dates, zone, today)
    if entry is None:
        later = find_entry(instrument, command.entry, facts.visit_dates, zone, today + timedelta(days=3660))
        when = f": its window opens {later.opens.isoformat(timespec='minutes')}" if later else ""
        raise QuestionnaireRefused(f"{instrument.id} is not due at {command.entry!r}{when}", field="entry")
    if (instrument.id, entry.entry) in state.submissions:
        raise QuestionnaireRefused(f"{instrument.id} {entry.entry} was already completed", field="entry")
    questionnaires = definition.questionnaires
    skew = questionnaires.compliance.clock_skew_minutes if questionnaires else 5
    _completed_at(command.completed_at, entry, now, skew)
    answers = _answers(instrument, command.answers)
    plain = {answer.item: answer.value for answer in answers}
    compiled = compile_instrument(instrument)
    results = score(compiled, plain)
    decided: list[ev.EcoaEvent] = [
        ev.QuestionnaireSubmitted(
            subject_id=state.subject_id, site_id=facts.site_id, instrument=instrument.id,
            instrument_version=instrument.version, entry=entry.entry, client_id=command.client_id, answers=answers,
            completed_at=command.completed_at, received_at=utc_timestamp(now), time_zone=zone.key,
            mode=command.mode, username=username, study_version=study_version,
        )
    ]  # fmt: skip
    if results:
        decided.append(
            ev.QuestionnaireScored(
                subject_id=state.subject_id, instrument=instrument.id, entry=entry.entry, client_id=command.client_id,
                scores=[ev.ScoreValue(score=r.score, value=r.value, missing=r.missing) for r in results],
            )
        )  # fmt: skip
    messages = {alert.id: alert.message for alert in instrument.alerts}
    decided += [
        ev.ClinicalAlertRaised(
            subject_id=state.subject_id, site_id=facts.site_id, alert=alert_id, instrument=instrument.id,
            entry=entry.entry, client_id=command.client_id, message=messages[alert_id],
        )
        for alert_id in alerts(compiled, plain, results)
    ]  # fmt: skip
    return decided


def decide_sweep(
    state: Participant, definition: StudyDefinition, facts: SubjectFacts, now: datetime
) -> list[ev.EcoaEvent]:
    """Diary entries whose window closed unanswered, and compliance below the study's threshold."""
    questionnaires = definition.questionnaires
    if questionnaires is None or facts.status not in ON_STUDY:
        return []
    zone = state.zone(facts)
    today = now.astimezone(zone).date()
    compliance = questionnaires.compliance
    decided: list[ev.EcoaEvent] = []
    for instrument in questionnaires.instruments:
        closed = [e for e in diary_entries(instrument, facts.visit_dates, zone, today) if e.closes < now]
        for entry in closed:
            key = (instrument.id, entry.entry)
            if key not in state.submissions and key not in state.missed:
                decided.append(
                    ev.DiaryEntryMissed(
                        subject_id=state.subject_id, site_id=facts.site_id, instrument=instrument.id,
                        entry=entry.entry, closed_at=utc_timestamp(entry.closes),
                    )
                )  # fmt: skip
        recent = [e for e in closed if e.day > today - timedelta(days=compliance.over_days)]
        if not recent:
            continue
        done = sum((instrument.id, e.entry) in state.submissions for e in recent)
        percent = done * 100 // len(recent)
        last = state.compliance_alerted.get(instrument.id)
        quiet = last is None or date.fromisoformat(last) <= today - timedelta(days=compliance.over_days)
        if percent < compliance.threshold_percent and quiet:
            decided.append(
                ev.ComplianceAlertRaised(
                    subject_id=state.subject_id, site_id=facts.site_id, instrument=instrument.id,
                    as_of=today.isoformat(), expected=len(recent), completed=done, percent=percent,
                    threshold_percent=compliance.threshold_percent,
                )
            )  # fmt: skip
    return decided


def decide_acknowledge(state: Participant, command: cmd.AcknowledgeClinicalAlert, username: str) -> list[ev.EcoaEvent]:
    acknowledged = state.alerts.get((command.alert, command.client_id))
    if acknowledged is None:
        raise NotFound(f"no clinical alert {command.alert} on submission {command.client_id}", field="alert")
    if acknowledged:
        raise DomainRuleViolation(f"clinical alert {command.alert} is already acknowledged", field="alert")
    if not command.note.strip():
        raise InvalidInput("acknowledge the alert with a note of what was done", field="note")
    return [
        ev.ClinicalAlertAcknowledged(
            subject_id=state.subject_id, alert=command.alert, client_id=command.client_id, username=username,
            note=command.note.strip(),
        )
    ]  # fmt: skip


def decide_time_zone(state: Participant, command: cmd.SetTimeZone) -> list[ev.EcoaEvent]:
    try:
        ZoneInfo(command.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {command.time_zone!r}", field="time_zone") from None
    if command.time_zone == state.time_zone:
        return []
    return [ev.ParticipantTimeZoneSet(subject_id=state.subject_id, time_zone=command.time_zone)]
