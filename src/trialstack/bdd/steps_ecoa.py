"""Steps about questionnaires (eCOA/ePRO): visit instruments on the site tablet, diary entries in their windows in
the participant's time zone, offline entries and resends, scores and skip logic, the sweep's missed entries and
compliance alerts, clinical alerts and their acknowledgement.

Times in these steps are the participant's local time (their time zone if one was set, else their site's): `"20:15"`
on the entry's day, or `"2026-01-06 01:30"`. The step moves the scenario's clock to the moment the answers reach the
server, unless the scenario pinned today.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from trialstack.bdd.errors import ExpectationFailed
from trialstack.bdd.features import DataTable
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import PARTICIPANT, World
from trialstack.capture.refs import VisitKey
from trialstack.ecoa import commands as cmd
from trialstack.ecoa import handlers as ecoa
from trialstack.ecoa.readmodel import (
    entries,
    open_alerts,
    subject_alerts,
    subject_facts_row,
    subjects_on_study,
    visit_dates,
)
from trialstack.identity.policy import Action
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition_questionnaires import Instrument
from trialstack.protocol.questionnaire_rules import compile_instrument, score, shown_items

QUESTIONNAIRES = "Questionnaires (eCOA)"
TABLET_TIME = time(10, 0)
ANSWERS = ("question", "answer")
step = LIBRARY.step


def _instrument(world: World, instrument_id: str) -> Instrument:
    instrument = world.rules.definition.instrument(instrument_id)
    if instrument is None:
        raise ExpectationFailed(f"the study has no questionnaire {instrument_id}")
    return instrument


def _zone(world: World) -> ZoneInfo:
    """The participant's time zone as the ecoa context counts it (read only, nothing written)."""
    subject = world.require_subject()
    with world.platform.unit_of_work(ecoa.SYSTEM_ECOA) as uow:
        state = ecoa.load_participant(uow, world.study_id, subject)
        facts = ecoa.subject_facts(uow, world.rules.definition, world.study_id, subject)
    return state.zone(facts)


def _local(world: World, text: str, day: date) -> datetime:
    """`"20:15"` on `day`, or `"2026-01-06 01:30"`, in the participant's time zone."""
    zone = _zone(world)
    try:
        if len(text.strip()) == 5:
            return datetime.combine(day, time.fromisoformat(text.strip()), zone)
        return datetime.fromisoformat(text.strip()).replace(tzinfo=zone)
    except ValueError:
        raise ExpectationFailed(f'"{text}" is not a local time: write "20:15" or "2026-01-06 01:30"') from None


def _move_clock(world: World, moment: datetime) -> None:
    if not world.pinned and moment > world.clock.now():
        world.clock.set(moment)


def _typical(instrument: Instrument) -> dict[str, str]:
    """An unremarkable set of answers: each question asked gets its first option or the low end of its scale."""
    answers: dict[str, str] = {}
    compiled = compile_instrument(instrument)
    for item in instrument.items:
        if not item.required or item.id not in {i.id for i in shown_items(compiled, answers)}:
            continue
        if item.options:
            answers[item.id] = item.options[0].code
        elif item.type.value == "time":
            answers[item.id] = "08:00"
        elif item.type.value == "date":
            answers[item.id] = "2026-01-05"
        elif item.type.value == "text":
            answers[item.id] = "Nothing to report"
        else:
            answers[item.id] = str(item.bounds[0] + (item.bounds[1] - item.bounds[0]) // 5)
    return answers


def _table_answers(table: DataTable | None) -> dict[str, str]:
    return {row["question"]: row["answer"] for row in table.records()} if table is not None else {}


def _client_id(world: World) -> str:
    return f"bdd-{world.rng.getrandbits(48):012x}"


def _submit(world: World, who: str, action: Action, username: str, command: cmd.SubmitQuestionnaire) -> None:
    world.command(
        who,
        action,
        f"the {command.instrument} entry {command.entry}",
        lambda uow: ecoa.submit_questionnaire(uow, world.study_id, username, command),
    )


def _diary(world: World, instrument_id: str, day: str, completed: str, sent: str | None) -> None:
    subject = world.require_subject()
    instrument = _instrument(world, instrument_id)
    entry_day = date.fromisoformat(day)
    moment = _local(world, completed, entry_day)
    _move_clock(world, _local(world, sent, entry_day) if sent is not None else moment)
    command = cmd.SubmitQuestionnaire(
        subject, instrument.id, day, _client_id(world), _typical(instrument), moment.isoformat(timespec="seconds")
    )
    _submit(world, PARTICIPANT, Action.PARTICIPANT_SELF, world.participant or PARTICIPANT, command)


@step(
    "the participant completes the {instrument} entry of {date} at {string}",
    example='When the participant completes the "DIARY" entry of 2026-01-05 at "20:15"',
    topic=QUESTIONNAIRES,
)
def complete_entry(world: World, instrument_id: str, day: str, completed: str) -> None:
    """The participant answers the diary entry of that day on their phone at that local time (an unremarkable
    entry: first option or low end of each scale), sent at once. Refused outside the entry's window, before it
    opens, or when the instrument is not due that day."""
    _diary(world, instrument_id, day, completed, None)


@step(
    "the participant completes the {instrument} entry of {date} at {string} offline, sent at {string}",
    example='When the participant completes the "DIARY" entry of 2026-01-06 at "21:40" offline, sent at '
    '"2026-01-07 08:05"',
    topic=QUESTIONNAIRES,
)
def complete_offline(world: World, instrument_id: str, day: str, completed: str, sent: str) -> None:
    """As `completes the entry`, on a phone without network: the answers reach the server later. The window is
    about the completion time on the device; a late receipt is allowed."""
    _diary(world, instrument_id, day, completed, sent)


@step(
    "the participant's phone sends the {instrument} entry of {date} again",
    example='When the participant\'s phone sends the "DIARY" entry of 2026-01-05 again',
    topic=QUESTIONNAIRES,
)
def resend(world: World, instrument_id: str, day: str) -> None:
    """The app did not see the server's answer and sends the same submission again, with the same client id:
    the server answers with the first submission and records nothing new."""
    subject = world.require_subject()
    stream = ecoa.stream_id(world.study_id, subject)

    def work(uow: UnitOfWork) -> ecoa.Submitted:
        sent = [e.payload for e in uow.read_stream(ecoa.ECOA, stream) if e.event_type == "QuestionnaireSubmitted"
                and e.payload["instrument"] == instrument_id and e.payload["entry"] == day]  # fmt: skip
        if not sent:
            raise ExpectationFailed(f"no {instrument_id} entry of {day} was sent before")
        first = sent[0]
        answers = {answer["item"]: answer["value"] for answer in first["answers"]}
        command = cmd.SubmitQuestionnaire(
            subject, instrument_id, day, first["client_id"], answers, first["completed_at"], first["mode"]
        )
        return ecoa.submit_questionnaire(uow, world.study_id, first["username"], command)

    world.command(PARTICIPANT, Action.PARTICIPANT_SELF, f"the resend of the {instrument_id} entry {day}", work)


@step(
    "the subject completes the {instrument} at the {visit} visit on the site tablet with:",
    example='When the subject completes the "PHQ-9" at the "Day 1" visit on the site tablet with:\n'
    "  | question | answer |\n  | PHQ01    | 1      |",
    topic=QUESTIONNAIRES,
    table=ANSWERS,
)
def on_tablet(world: World, instrument_id: str, visit: VisitKey, table: DataTable) -> None:
    """The coordinator hands the site tablet over on the visit day (10:00 local time) and attests the answers;
    questions not in the table get the unremarkable answer unless the table answers them ("" leaves one
    unanswered). The visit's date must be recorded."""
    subject = world.require_subject()
    instrument = _instrument(world, instrument_id)
    day = _visit_day(world, visit)
    moment = datetime.combine(day, TABLET_TIME, _zone(world))
    _move_clock(world, moment)
    given = _table_answers(table)
    answers = {k: v for k, v in ({**_typical(instrument), **given}).items() if v != ""}
    answers = {k: v for k, v in answers.items() if k in given or _asked(instrument, answers, k)}
    command = cmd.SubmitQuestionnaire(
        subject, instrument.id, visit.visit_id, _client_id(world), answers, moment.isoformat(timespec="seconds"),
        "site_tablet",
    )  # fmt: skip
    _submit(world, "coordinator", Action.ECOA_ADMINISTER, "coordinator", command)


def _asked(instrument: Instrument, answers: dict[str, str], item_id: str) -> bool:
    return item_id in {item.id for item in shown_items(compile_instrument(instrument), answers)}


def _visit_day(world: World, visit: VisitKey) -> date:
    with world.platform.engine.connect() as connection:
        row = subject_facts_row(connection, world.study_id, world.require_subject())
    recorded = visit_dates(row["visit_dates"]).get(visit.visit_id) if row is not None else None
    if recorded is None:
        raise ExpectationFailed(f"the {world.names.visit_name(visit)} visit date is not recorded")
    return recorded


@step(
    "the participant's time zone is set to {string}",
    example='Given the participant\'s time zone is set to "America/Los_Angeles"',
    topic=QUESTIONNAIRES,
)
def time_zone(world: World, zone: str) -> None:
    """The participant moved or travels: their diary windows are counted in this IANA time zone from now on."""
    command = cmd.SetTimeZone(world.require_subject(), zone)
    world.command(
        PARTICIPANT, Action.PARTICIPANT_SELF, "the time zone",
        lambda uow: ecoa.set_time_zone(uow, world.study_id, command),
    )  # fmt: skip


@step(
    "the eCOA sweep runs on {date} at {string}",
    example='When the eCOA sweep runs on 2026-01-10 at "12:00"',
    topic=QUESTIONNAIRES,
)
def sweep(world: World, day: str, at: str) -> None:
    """The periodic sweep (a system job) at that local time: every diary entry whose window closed unanswered is
    recorded missed, and a compliance alert is raised when fewer entries than the study's threshold were
    completed over its period (once per period)."""
    _move_clock(world, _local(world, at, date.fromisoformat(day)))

    def work(uow: UnitOfWork) -> list[Any]:
        swept: list[Any] = []
        for subject in subjects_on_study(uow.connection, world.study_id):
            swept += ecoa.sweep_subject(uow, world.study_id, subject)
        return swept

    world.command("data manager", Action.ECOA_READ, "the sweep", work)


@step(
    "the investigator acknowledges the clinical alert {string} with {string}",
    example='When the investigator acknowledges the clinical alert "PHQ9-ITEM9" with "Called the participant; no '
    'risk today"',
    topic=QUESTIONNAIRES,
)
def acknowledge(world: World, alert: str, note: str) -> None:
    """The investigator records what was done about the subject's open clinical alert; a note is required."""
    subject = world.require_subject()
    raised = [a for a in _alerts(world) if a["kind"] == "clinical" and a["alert_key"].startswith(f"clinical:{alert}:")]
    client_id = raised[-1]["alert_key"].rsplit(":", 1)[1] if raised else "unknown-client"
    command = cmd.AcknowledgeClinicalAlert(subject, alert, client_id, note)
    world.command(
        "investigator", Action.ECOA_ALERT_ACKNOWLEDGE, f"the acknowledgement of {alert}",
        lambda uow: ecoa.acknowledge_alert(uow, world.study_id, "investigator", command),
    )  # fmt: skip


# Then ---------------------------------------------------------------------------------------------------------
def _entry(world: World, instrument_id: str, entry: str) -> dict[str, Any] | None:
    with world.platform.engine.connect() as connection:
        rows = entries(connection, world.study_id, world.require_subject())
    return next((r for r in rows if r["instrument"] == instrument_id and r["entry"] == entry), None)


def _alerts(world: World) -> list[dict[str, Any]]:
    with world.platform.engine.connect() as connection:
        return subject_alerts(connection, world.study_id, world.require_subject())


@step(
    "the {instrument} entry of {date} is {words}",
    example='Then the "DIARY" entry of 2026-01-06 is missed',
    topic=QUESTIONNAIRES,
)
def entry_status(world: World, instrument_id: str, day: str, status: str) -> None:
    """The entry's status as the site sees it: completed, or missed (its window closed unanswered, after a
    sweep); "not recorded" when neither happened yet."""
    row = _entry(world, instrument_id, day)
    actual = row["status"] if row is not None else "not recorded"
    if actual != status:
        raise ExpectationFailed(f"the {instrument_id} entry of {day} is {actual}", expected=status, actual=actual)


def _score(world: World, instrument_id: str, entry: str, score_id: str, expected: str) -> None:
    row = _entry(world, instrument_id, entry)
    if row is None or row["status"] != "completed":
        raise ExpectationFailed(f"the {instrument_id} entry {entry} is not completed", expected=expected)
    actual = json.loads(row["scores"] or "{}").get(score_id)
    if actual is None or Decimal(actual) != Decimal(expected):
        raise ExpectationFailed(f"{instrument_id} {score_id} is {actual}", expected=expected, actual=str(actual))


@step(
    "the {instrument} {string} score at the {visit} visit is {value}",
    example='Then the "PHQ-9" "TOTAL" score at the "Day 1" visit is 4',
    topic=QUESTIONNAIRES,
)
def visit_score(world: World, instrument_id: str, score_id: str, visit: VisitKey, expected: str) -> None:
    """The score recorded with the visit's submission (exact decimal)."""
    _score(world, instrument_id, visit.visit_id, score_id, expected)


@step(
    "the {instrument} {string} score of the entry of {date} is {value}",
    example='Then the "DIARY" "SYMPTOMS" score of the entry of 2026-01-05 is 4',
    topic=QUESTIONNAIRES,
)
def entry_score(world: World, instrument_id: str, score_id: str, day: str, expected: str) -> None:
    """The score recorded with the diary entry's submission (exact decimal)."""
    _score(world, instrument_id, day, score_id, expected)


@step(
    "the {instrument} {string} score of these answers is {value}:",
    example='Then the "PHQ-9" "TOTAL" score of these answers is none:\n'
    "  | question | answer |\n"
    "  | PHQ01    | 2      |",
    topic=QUESTIONNAIRES,
    table=ANSWERS,
)
def score_of(world: World, instrument_id: str, score_id: str, expected: str, table: DataTable) -> None:
    """The study's scoring rule applied to these answers (nothing is submitted): questions left out are missing;
    with the instrument's `prorate`, each missing one counts as the mean of the answered ones, up to its
    `max_missing`; beyond that the score is "none"."""
    instrument = _instrument(world, instrument_id)
    results = {r.score: r.value for r in score(compile_instrument(instrument), _table_answers(table))}
    if score_id not in results:
        raise ExpectationFailed(
            f"{instrument_id} has no score {score_id}", expected=score_id, actual=", ".join(results)
        )
    actual = results[score_id]
    same = actual is None if expected == "none" else actual is not None and Decimal(actual) == Decimal(expected)
    if not same:
        raise ExpectationFailed(f"{instrument_id} {score_id} is {actual}", expected=expected, actual=str(actual))


@step(
    "the {instrument} asks {string} after these answers:",
    example='Then the "PHQ-9" asks "PHQ10" after these answers:\n  | question | answer |\n  | PHQ01    | 1      |',
    topic=QUESTIONNAIRES,
    table=ANSWERS,
)
def asks(world: World, instrument_id: str, item_id: str, table: DataTable) -> None:
    """Skip logic: the question is shown after these answers (its `show_if` holds, or cannot be decided yet from
    the questions answered), on the phone, the tablet and for the server that checks the submission."""
    _skip(world, instrument_id, item_id, table, asked=True)


@step(
    "the {instrument} does not ask {string} after these answers:",
    example='Then the "PHQ-9" does not ask "PHQ10" after these answers:\n'
    "  | question | answer |\n"
    "  | PHQ01    | 0      |",
    topic=QUESTIONNAIRES,
    table=ANSWERS,
)
def does_not_ask(world: World, instrument_id: str, item_id: str, table: DataTable) -> None:
    """Skip logic: the question is skipped after these answers (its `show_if` is false); answering it anyway is
    refused."""
    _skip(world, instrument_id, item_id, table, asked=False)


def _skip(world: World, instrument_id: str, item_id: str, table: DataTable, asked: bool) -> None:
    instrument = _instrument(world, instrument_id)
    if instrument.item(item_id) is None:
        raise ExpectationFailed(f"{instrument_id} has no question {item_id}")
    actual = _asked(instrument, _table_answers(table), item_id)
    if actual != asked:
        state = "asked" if actual else "not asked"
        raise ExpectationFailed(f"{item_id} is {state}", expected="asked" if asked else "not asked", actual=state)


@step(
    "the subject has an open clinical alert {string}",
    example='Then the subject has an open clinical alert "PHQ9-ITEM9"',
    topic=QUESTIONNAIRES,
)
def open_clinical(world: World, alert: str) -> None:
    """The alert was raised on one of the subject's submissions and no one has acknowledged it yet: the site sees
    it on the study home."""
    with world.platform.engine.connect() as connection:
        rows = open_alerts(connection, world.study_id, None)
    mine = [r for r in rows if r["subject_id"] == world.require_subject() and r["kind"] == "clinical"
            and r["alert_key"].startswith(f"clinical:{alert}:")]  # fmt: skip
    if not mine:
        raise ExpectationFailed(f"no open clinical alert {alert}", expected=f"{alert} open", actual="none open")


@step(
    "the clinical alert {string} is acknowledged with {string}",
    example='Then the clinical alert "PHQ9-ITEM9" is acknowledged with "no risk today"',
    topic=QUESTIONNAIRES,
)
def acknowledged(world: World, alert: str, note: str) -> None:
    """The investigator acknowledged the alert; the note contains this text."""
    raised = [a for a in _alerts(world) if a["kind"] == "clinical" and a["alert_key"].startswith(f"clinical:{alert}:")]
    done = [a for a in raised if a["acknowledged_at"] is not None and note.lower() in (a["note"] or "").lower()]
    if not done:
        actual = "not raised" if not raised else f"note {raised[-1]['note']!r}" if raised[-1]["note"] else "open"
        raise ExpectationFailed(f"{alert} is not acknowledged with {note!r}", expected=note, actual=actual)


@step(
    "the subject has a compliance alert for the {instrument} saying {string}",
    example='Then the subject has a compliance alert for the "DIARY" saying "1 of 5 entries completed (20 %"',
    topic=QUESTIONNAIRES,
)
def compliance_alert(world: World, instrument_id: str, text: str) -> None:
    """The sweep found fewer completed entries than the study's threshold over its period; the message says
    how many of how many, the percentage and the threshold."""
    found = [a["message"] for a in _alerts(world) if a["kind"] == "compliance" and a["instrument"] == instrument_id]
    if not any(text.lower() in message.lower() for message in found):
        raise ExpectationFailed(
            f"no compliance alert for {instrument_id} saying {text!r}", expected=text, actual="; ".join(found) or "none"
        )


@step(
    "the subject has no compliance alert for the {instrument}",
    example='Then the subject has no compliance alert for the "DIARY"',
    topic=QUESTIONNAIRES,
)
def no_compliance_alert(world: World, instrument_id: str) -> None:
    """Compliance has not fallen below the study's threshold at any sweep."""
    found = [a["message"] for a in _alerts(world) if a["kind"] == "compliance" and a["instrument"] == instrument_id]
    if found:
        raise ExpectationFailed(f"a compliance alert for {instrument_id}", expected="none", actual="; ".join(found))


@step(
    "the {instrument} entry of {date} was received once, completed at {string}",
    example='Then the "DIARY" entry of 2026-01-05 was received once, completed at "20:15"',
    topic=QUESTIONNAIRES,
)
def received_once(world: World, instrument_id: str, day: str, completed: str) -> None:
    """Exactly one submission of the entry is in the ledger (a resend added nothing), with the device's
    completion time (the participant's local time)."""
    subject = world.require_subject()
    with world.platform.unit_of_work(ecoa.SYSTEM_ECOA) as uow:
        sent = [e.payload for e in uow.read_stream(ecoa.ECOA, ecoa.stream_id(world.study_id, subject))
                if e.event_type == "QuestionnaireSubmitted" and e.payload["instrument"] == instrument_id
                and e.payload["entry"] == day]  # fmt: skip
    expected = _local(world, completed, date.fromisoformat(day))
    if len(sent) != 1 or datetime.fromisoformat(sent[0]["completed_at"]) != expected:
        actual = f"{len(sent)} submissions" + (f", completed at {sent[0]['completed_at']}" if sent else "")
        raise ExpectationFailed(
            f"the {instrument_id} entry of {day} was not received once", expected=expected.isoformat(), actual=actual
        )


@step(
    "the {instrument} entry of {date} was completed at {string} and received at {string}",
    example='Then the "DIARY" entry of 2026-01-06 was completed at "21:40" and received at "2026-01-07 08:05"',
    topic=QUESTIONNAIRES,
)
def completed_and_received(world: World, instrument_id: str, day: str, completed: str, received: str) -> None:
    """The device's completion time and the server's receipt time of the entry (participant's local time)."""
    row = _entry(world, instrument_id, day)
    if row is None or row["status"] != "completed":
        raise ExpectationFailed(f"the {instrument_id} entry of {day} is not completed")
    on = date.fromisoformat(day)
    got = (
        datetime.fromisoformat(row["completed_at"]),
        datetime.fromisoformat(row["received_at"].replace("Z", "+00:00")),
    )
    wanted = (_local(world, completed, on), _local(world, received, on))
    if got != wanted:
        raise ExpectationFailed(
            f"the {instrument_id} entry of {day} has other times",
            expected=f"completed {wanted[0].isoformat()}, received {wanted[1].isoformat()}",
            actual=f"completed {row['completed_at']}, received {row['received_at']}",
        )
