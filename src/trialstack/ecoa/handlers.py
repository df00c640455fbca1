"""eCOA use cases: submit a questionnaire, sweep for missed entries and compliance, acknowledge an alert.

Each is one command in one unit of work (the adapter's). The subject's facts come from ecoa's own read model, the
consent from the subject's consent events (folded with `consent.events.see`), the protocol from the version in force.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from trialstack.consent.events import ConsentView, see
from trialstack.ecoa import commands as cmd
from trialstack.ecoa import events as ev
from trialstack.ecoa.model import (
    Participant,
    SubjectFacts,
    decide_acknowledge,
    decide_submit,
    decide_sweep,
    decide_time_zone,
    evolve,
)
from trialstack.ecoa.readmodel import subject_facts_row, subjects_on_study, visit_dates
from trialstack.errors import NotFound
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.registry import decode, encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.readmodel import version_in_force
from trialstack.protocol.version import StudyVersion

ECOA = "ecoa"
CONSENT = "consent"
SYSTEM_ECOA = Actor(id="system:ecoa", role="system")


def stream_id(study_id: str, subject_id: str) -> str:
    return f"{study_id}/{subject_id}"


def _fold(state: Participant, events: Sequence[RecordedEvent]) -> Participant:
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, ev.EcoaEvent):
            state = evolve(payload, state)
    return replace(state, version=events[-1].stream_version) if events else state


def load_participant(uow: UnitOfWork, study_id: str, subject_id: str) -> Participant:
    return uow.load(ECOA, stream_id(study_id, subject_id), Participant(study_id, subject_id), _fold)


def _consent(uow: UnitOfWork, study_id: str, subject_id: str) -> ConsentView:
    view = ConsentView()
    for recorded in uow.read_stream(CONSENT, stream_id(study_id, subject_id)):
        view = see(view, decode(recorded))
    return view


def _version(uow: UnitOfWork, study_id: str) -> StudyVersion:
    version = version_in_force(uow.connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version


def subject_facts(uow: UnitOfWork, definition: StudyDefinition, study_id: str, subject_id: str) -> SubjectFacts:
    row = subject_facts_row(uow.connection, study_id, subject_id)
    if row is None:
        raise NotFound(f"subject {subject_id} not found in study {study_id}", field="subject")
    site = next((s for s in definition.sites if s.id == row["site_id"]), None)
    return SubjectFacts(
        row["site_id"], row["status"], site.time_zone if site else "UTC", visit_dates(row["visit_dates"])
    )


def _append(
    uow: UnitOfWork, state: Participant, events: Sequence[ev.EcoaEvent], actor: Actor | None = None
) -> list[RecordedEvent]:
    if not events:
        return []
    return uow.append(
        state.study_id, ECOA, stream_id(state.study_id, state.subject_id), [encode(e) for e in events],
        expected_version=state.version, actor=actor,
    )  # fmt: skip


@dataclass(frozen=True)
class Submitted:
    events: list[RecordedEvent]
    repeated: bool
    """True when the client id was already received: `events` are the first submission's, nothing was written."""


def submit_questionnaire(uow: UnitOfWork, study_id: str, username: str, command: cmd.SubmitQuestionnaire) -> Submitted:
    state = load_participant(uow, study_id, command.subject_id)
    version = _version(uow, study_id)
    facts = subject_facts(uow, version.definition, study_id, command.subject_id)
    consent = _consent(uow, study_id, command.subject_id)
    decided = decide_submit(state, version.definition, facts, consent, command, username, uow.clock.now(), version.hash)
    if not decided:
        earlier = [
            e for e in uow.read_stream(ECOA, stream_id(study_id, command.subject_id))
            if e.payload.get("client_id") == command.client_id
        ]  # fmt: skip
        return Submitted(earlier, repeated=True)
    return Submitted(_append(uow, state, decided), repeated=False)


def sweep_subject(uow: UnitOfWork, study_id: str, subject_id: str) -> list[RecordedEvent]:
    """Missed diary entries and compliance alerts for one subject as of now (the system acts)."""
    state = load_participant(uow, study_id, subject_id)
    definition = _version(uow, study_id).definition
    facts = subject_facts(uow, definition, study_id, subject_id)
    return _append(uow, state, decide_sweep(state, definition, facts, uow.clock.now()), SYSTEM_ECOA)


def sweep_study(engine: Engine, unit_of_work: Callable[[Actor], UnitOfWork], study_id: str) -> int:
    """Sweep every subject on study, one unit of work each; returns the number of events appended."""
    with engine.connect() as connection:
        subjects = subjects_on_study(connection, study_id)
    appended = 0
    for subject_id in subjects:
        with unit_of_work(SYSTEM_ECOA) as uow:
            appended += len(sweep_subject(uow, study_id, subject_id))
            uow.commit()
    return appended


def acknowledge_alert(
    uow: UnitOfWork, study_id: str, username: str, command: cmd.AcknowledgeClinicalAlert
) -> list[RecordedEvent]:
    state = load_participant(uow, study_id, command.subject_id)
    return _append(uow, state, decide_acknowledge(state, command, username))


def set_time_zone(uow: UnitOfWork, study_id: str, command: cmd.SetTimeZone) -> list[RecordedEvent]:
    state = load_participant(uow, study_id, command.subject_id)
    return _append(uow, state, decide_time_zone(state, command))
