"""What the eCOA API and pages read: a subject's entries due now and soon (in the participant's time zone), the
instrument definitions a device needs to ask them offline, and the series of scores over time.

Read side only: the participant's state is folded from their `ecoa` stream with ecoa's own `evolve`, the subject's
site, status and visit dates come from ecoa's read model, the schedule from `ecoa.schedule`. Nothing here decides:
a submission is still checked by `ecoa.handlers.submit_questionnaire`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from trialstack.ecoa import events as ev
from trialstack.ecoa.handlers import ECOA, stream_id
from trialstack.ecoa.model import Participant, SubjectFacts, Submission, evolve
from trialstack.ecoa.readmodel import entries, subject_facts_row, visit_dates
from trialstack.ecoa.schedule import Entry, diary_entries, diary_period, visit_entries
from trialstack.errors import NotFound
from trialstack.ledger import store
from trialstack.ledger.registry import decode
from trialstack.protocol.definition import Instrument, StudyDefinition
from trialstack.protocol.questionnaire_rules import item_rule_type
from trialstack.protocol.rules import RuleCompileError, RuleType, parse
from trialstack.protocol.rules.ast import Arith, BoolOp, Call, Compare, Const, Expr, Member, Name, Neg, Not

SOON = timedelta(hours=24)
"""How far ahead `due` looks: entries whose window opens within a day are listed as upcoming."""
RECENT = timedelta(days=1)
"""Completed entries of yesterday and today stay in `due`, so the device shows what it sent."""


def participant_state(connection: Connection, study_id: str, subject_id: str) -> Participant:
    state = Participant(study_id, subject_id)
    for recorded in store.read_stream(connection, ECOA, stream_id(study_id, subject_id)):
        payload = decode(recorded)
        if isinstance(payload, ev.EcoaEvent):
            state = evolve(payload, state)
    return state


def facts_of(connection: Connection, definition: StudyDefinition, study_id: str, subject_id: str) -> SubjectFacts:
    row = subject_facts_row(connection, study_id, subject_id)
    if row is None:
        raise NotFound(f"subject {subject_id} not found in study {study_id}", field="subject")
    site = next((s for s in definition.sites if s.id == row["site_id"]), None)
    return SubjectFacts(
        row["site_id"], row["status"], site.time_zone if site else "UTC", visit_dates(row["visit_dates"])
    )


@dataclass(frozen=True)
class Due:
    instrument: Instrument
    entry: Entry
    status: str
    """`open` (its window is open now), `upcoming` (opens within a day) or `completed`."""
    submission: Submission | None

    def as_json(self) -> dict[str, Any]:
        submission = self.submission
        return {
            "instrument": self.instrument.id,
            "name": self.instrument.name,
            "entry": self.entry.entry,
            "day": self.entry.day.isoformat(),
            "diary": self.entry.diary,
            "opens": self.entry.opens.isoformat(timespec="minutes"),
            "closes": self.entry.closes.isoformat(timespec="minutes"),
            "status": self.status,
            "completed": submission is not None,
            "client_id": submission.client_id if submission else None,
            "completed_at": submission.completed_at if submission else None,
            "received_at": submission.received_at if submission else None,
        }


def due_entries(definition: StudyDefinition, state: Participant, facts: SubjectFacts, now: datetime) -> list[Due]:
    """Entries open now or opening within a day, and those completed since yesterday, by window."""
    questionnaires = definition.questionnaires
    if questionnaires is None or facts.status not in ("screening", "enrolled"):
        return []
    zone = state.zone(facts)
    today = now.astimezone(zone).date()
    found: list[Due] = []
    for instrument in questionnaires.instruments:
        candidates = [
            *visit_entries(instrument, facts.visit_dates, zone),
            *diary_entries(instrument, facts.visit_dates, zone, today + timedelta(days=1)),
        ]
        for entry in candidates:
            submission = state.submissions.get((instrument.id, entry.entry))
            if submission is not None:
                if entry.closes >= now - RECENT:
                    found.append(Due(instrument, entry, "completed", submission))
            elif (instrument.id, entry.entry) not in state.missed and entry.closes >= now and entry.opens <= now + SOON:
                found.append(Due(instrument, entry, "open" if entry.opens <= now else "upcoming", None))
    return sorted(found, key=lambda due: (due.entry.opens, due.instrument.id))


# --- instruments for the device -----------------------------------------------------------------------------------


class _Unsupported(Exception):
    pass


_CALLS = frozenset({"is_blank", "is_present"})


def _number(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    return value


def device_rule(expr: Expr) -> list[Any]:
    """A `show_if` expression as a small JSON tree the device evaluates offline (static/ecoa-offline.js):
    `["name", X]`, `["const", v]`, `["not", a]`, `["neg", a]`, `[op, a, b]`, `["in", a, [v...], negated]`,
    `["is_blank", a]`. Anything else raises _Unsupported (the device then shows the item, as unknown does)."""
    match expr:
        case Const(value=value):
            return ["const", _number(value)]
        case Name(name=name):
            return ["name", name]
        case Not(operand=operand):
            return ["not", device_rule(operand)]
        case Neg(operand=operand):
            return ["neg", device_rule(operand)]
        case BoolOp(op=op, left=left, right=right) | Compare(op=op, left=left, right=right):
            return [op, device_rule(left), device_rule(right)]
        case Arith(op=op, left=left, right=right):
            return [op, device_rule(left), device_rule(right)]
        case Member(operand=operand, items=items, negated=negated):
            return ["in", device_rule(operand), [_number(item.value) for item in items], negated]
        case Call(function=function, args=(argument,)) if function in _CALLS:
            return [function, device_rule(argument)]
    raise _Unsupported(type(expr).__name__)


@lru_cache(maxsize=256)
def _show_if_tree(source: str) -> str | None:
    try:
        return json.dumps(device_rule(parse(source)))
    except (_Unsupported, RuleCompileError):
        return None


def instrument_json(instrument: Instrument) -> dict[str, Any]:
    """Everything a device needs to ask the instrument: items in order, options with the values expressions read,
    scales, sections, and each `show_if` as source and as a tree to evaluate offline."""
    items = []
    for item in instrument.items:
        tree = _show_if_tree(item.show_if) if item.show_if else None
        low, high = item.bounds
        items.append({
            "id": item.id, "text": item.text, "type": item.type.value, "section": item.section,
            "required": item.required, "numeric": item_rule_type(item) is RuleType.NUMBER,
            "options": [{"code": o.code, "label": o.label, "value": o.value} for o in item.options],
            "min": low, "max": high, "min_label": item.min_label, "max_label": item.max_label,
            "max_length": item.max_length, "show_if": item.show_if,
            "show_if_tree": json.loads(tree) if tree else None,
        })  # fmt: skip
    return {
        "id": instrument.id,
        "name": instrument.name,
        "version": instrument.version,
        "instructions": instrument.instructions,
        "copyright": instrument.copyright,
        "items": items,
    }


# --- what sites read --------------------------------------------------------------------------------------------


def subject_entries(
    connection: Connection, definition: StudyDefinition, study_id: str, subject_id: str, now: datetime
) -> list[dict[str, Any]]:
    """Every expected entry up to today (completed, missed, due), plus the entries recorded, by instrument and day."""
    state = participant_state(connection, study_id, subject_id)
    facts = facts_of(connection, definition, study_id, subject_id)
    zone = state.zone(facts)
    today = now.astimezone(zone).date()
    recorded = {(row["instrument"], row["entry"]): row for row in entries(connection, study_id, subject_id)}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for instrument in definition.questionnaires.instruments if definition.questionnaires else ():
        expected = [*visit_entries(instrument, facts.visit_dates, zone),
                    *diary_entries(instrument, facts.visit_dates, zone, today)]  # fmt: skip
        for entry in expected:
            status = "due" if entry.closes >= now else "missed"
            if entry.opens > now:
                status = "upcoming"
            rows[(instrument.id, entry.entry)] = {
                "instrument": instrument.id, "entry": entry.entry, "day": entry.day.isoformat(), "status": status,
                "opens": entry.opens.isoformat(timespec="minutes"),
                "closes": entry.closes.isoformat(timespec="minutes"),
                "completed_at": None, "received_at": None, "mode": None, "scores": {},
            }  # fmt: skip
    for key, row in recorded.items():
        base = rows.get(key, {"instrument": key[0], "entry": key[1], "day": key[1], "opens": None, "closes": None})
        rows[key] = {
            **base,
            "status": row["status"],
            "completed_at": row["completed_at"],
            "received_at": row["received_at"],
            "mode": row["mode"],
            "scores": json.loads(row["scores"]) if row["scores"] else {},
        }
    return sorted(rows.values(), key=lambda row: (row["instrument"], row["day"], row["entry"]))


def compliance(definition: StudyDefinition, rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per diary instrument: entries whose window has closed or that were completed, and how many were completed."""
    found: dict[str, dict[str, int]] = {}
    for instrument in definition.questionnaires.instruments if definition.questionnaires else ():
        if instrument.schedule.diary is None:
            continue
        mine = [row for row in rows if row["instrument"] == instrument.id]
        counted = [row for row in mine if row["status"] in ("completed", "missed")]
        done = sum(1 for row in counted if row["status"] == "completed")
        found[instrument.id] = {
            "expected": len(counted),
            "completed": done,
            "percent": done * 100 // len(counted) if counted else 100,
        }
    return found


def score_series(definition: StudyDefinition, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One series per instrument score: (entry, value) of the completed entries in order, for the charts."""
    series = []
    for instrument in definition.questionnaires.instruments if definition.questionnaires else ():
        for score in instrument.scores:
            points = [
                {"x": row["entry"], "y": float(row["scores"][score.id])}
                for row in rows
                if row["instrument"] == instrument.id and row["scores"].get(score.id) is not None
            ]
            if points:
                series.append({"instrument": instrument.id, "score": score.id, "label": score.label,
                               "points": points})  # fmt: skip
    return series


def diary_days(instrument: Instrument, facts: SubjectFacts) -> tuple[str, str | None] | None:
    period = diary_period(instrument, facts.visit_dates)
    if period is None:
        return None
    return period[0].isoformat(), period[1].isoformat() if period[1] else None
