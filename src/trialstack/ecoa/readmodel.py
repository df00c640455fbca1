"""Read model of ecoa: subjects as ecoa sees them (from capture's and consent's events), entries, alerts.

`rm_ecoa_subject` gives the decisions the subject's site, status and visit dates without reading capture's tables;
`rm_ecoa_entry` and `rm_ecoa_alert` are what sites see: entries and scores over time, compliance, alerts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Column, Connection, MetaData, String, Table, Text, select

from trialstack.capture.events import SUBJECT_FACT_EVENTS, follow_subject
from trialstack.ecoa import events as ev
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.rowfold import FoldingProjection, Key, RowStore

readmodel_metadata = MetaData()

subject_table = Table(
    "rm_ecoa_subject",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("visit_dates", Text, nullable=False),
    Column("username", String(64)),
)

entry_table = Table(
    "rm_ecoa_entry",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("instrument", String(40), primary_key=True),
    Column("entry", String(40), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("status", String(12), nullable=False),
    Column("client_id", String(64)),
    Column("completed_at", String(40)),
    Column("received_at", String(27)),
    Column("mode", String(20)),
    Column("scores", Text),
)

alert_table = Table(
    "rm_ecoa_alert",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("alert_key", String(200), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("kind", String(12), nullable=False),
    Column("instrument", String(40), nullable=False),
    Column("message", Text, nullable=False),
    Column("raised_at", String(27), nullable=False),
    Column("acknowledged_by", String(64)),
    Column("acknowledged_at", String(27)),
    Column("note", Text),
)

_ECOA = frozenset(cls.__name__ for cls in ev.ECOA_EVENTS)


def clinical_key(alert: str, client_id: str) -> str:
    return f"clinical:{alert}:{client_id}"


class EcoaReadModel(FoldingProjection):
    name = "ecoa.entries"
    tables = (subject_table, entry_table, alert_table)
    event_types = frozenset({*SUBJECT_FACT_EVENTS, "ParticipantActivated", *_ECOA})

    def touches(self, event: RecordedEvent) -> Iterable[tuple[Table, Key]]:
        payload = event.payload
        yield subject_table, (event.study_id, payload["subject_id"])
        if "entry" in payload and "instrument" in payload:
            yield entry_table, (event.study_id, payload["subject_id"], payload["instrument"], payload["entry"])
        if "alert" in payload:
            yield (
                alert_table,
                (event.study_id, payload["subject_id"], clinical_key(payload["alert"], payload["client_id"])),
            )

    def fold(self, event: RecordedEvent, rows: RowStore) -> None:
        payload, kind = event.payload, event.event_type
        key = (event.study_id, payload["subject_id"])
        made = {"study_id": key[0], "subject_id": key[1], "username": None}
        subject = follow_subject(made if kind == "SubjectScreened" else rows.get(subject_table, key), kind, payload)
        if subject is None:
            return
        if kind == "ParticipantActivated":
            subject["username"] = payload["username"]
        elif kind not in SUBJECT_FACT_EVENTS:
            self._ecoa(event, subject["site_id"], rows)
        rows.put(subject_table, subject)

    def _ecoa(self, event: RecordedEvent, site_id: str, rows: RowStore) -> None:
        payload, kind = event.payload, event.event_type
        subject = payload["subject_id"]
        if kind in ("QuestionnaireSubmitted", "DiaryEntryMissed"):
            submitted = kind == "QuestionnaireSubmitted"
            rows.put(entry_table, {
                "study_id": event.study_id, "subject_id": subject, "instrument": payload["instrument"],
                "entry": payload["entry"], "site_id": site_id, "status": "completed" if submitted else "missed",
                "client_id": payload.get("client_id"), "completed_at": payload.get("completed_at"),
                "received_at": payload.get("received_at"), "mode": payload.get("mode"), "scores": None,
            })  # fmt: skip
        if kind == "QuestionnaireScored":
            entry = rows.get(entry_table, (event.study_id, subject, payload["instrument"], payload["entry"]))
            if entry is not None:
                entry["scores"] = json.dumps({s["score"]: s["value"] for s in payload["scores"]}, sort_keys=True)
                rows.put(entry_table, entry)
        alert = _alert(event, site_id)
        if alert is not None:
            rows.put(alert_table, alert)
        if kind == "ClinicalAlertAcknowledged":
            raised = rows.get(
                alert_table, (event.study_id, subject, clinical_key(payload["alert"], payload["client_id"]))
            )
            if raised is not None:
                raised.update(
                    acknowledged_by=payload["username"], acknowledged_at=event.recorded_at, note=payload["note"]
                )
                rows.put(alert_table, raised)


def _alert(event: RecordedEvent, site_id: str) -> dict[str, Any] | None:
    payload, kind = event.payload, event.event_type
    base = {"study_id": event.study_id, "subject_id": payload["subject_id"], "site_id": site_id,
            "instrument": payload.get("instrument", ""), "raised_at": event.recorded_at, "acknowledged_by": None,
            "acknowledged_at": None, "note": None}  # fmt: skip
    if kind == "ClinicalAlertRaised":
        return {**base, "alert_key": clinical_key(payload["alert"], payload["client_id"]), "kind": "clinical",
                "message": payload["message"]}  # fmt: skip
    if kind == "DiaryEntryMissed":
        return {**base, "alert_key": f"missed:{payload['instrument']}:{payload['entry']}", "kind": "missed",
                "message": f"{payload['instrument']} entry of {payload['entry']} was not completed"}  # fmt: skip
    if kind == "ComplianceAlertRaised":
        counts = f"{payload['completed']} of {payload['expected']} entries completed"
        share = f"{payload['percent']} %, threshold {payload['threshold_percent']} %"
        message = f"{payload['instrument']}: {counts} ({share}) as of {payload['as_of']}"
        return {**base, "alert_key": f"compliance:{payload['instrument']}:{payload['as_of']}", "kind": "compliance",
                "message": message}  # fmt: skip
    return None


def subject_facts_row(connection: Connection, study_id: str, subject_id: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(subject_table).where(subject_table.c.study_id == study_id, subject_table.c.subject_id == subject_id)
    ).first()
    return dict(row._mapping) if row is not None else None


def visit_dates(text: str) -> dict[str, date]:
    return {visit.split(".")[0]: date.fromisoformat(day) for visit, day in json.loads(text).items() if "." not in visit}


def subjects_on_study(connection: Connection, study_id: str) -> list[str]:
    statement = select(subject_table.c.subject_id).where(
        subject_table.c.study_id == study_id, subject_table.c.status.in_(("screening", "enrolled"))
    )
    return [str(row[0]) for row in connection.execute(statement.order_by(subject_table.c.subject_id))]


def entries(connection: Connection, study_id: str, subject_id: str) -> list[dict[str, Any]]:
    statement = select(entry_table).where(entry_table.c.study_id == study_id, entry_table.c.subject_id == subject_id)
    return [
        dict(row._mapping)
        for row in connection.execute(statement.order_by(entry_table.c.instrument, entry_table.c.entry))
    ]


def open_alerts(connection: Connection, study_id: str, sites: frozenset[str] | None) -> list[dict[str, Any]]:
    """Alerts not yet acknowledged (clinical) or recent (missed entries, compliance), newest first."""
    statement = select(alert_table).where(alert_table.c.study_id == study_id, alert_table.c.acknowledged_at.is_(None))
    if sites is not None:
        statement = statement.where(alert_table.c.site_id.in_(sorted(sites)))
    return [dict(row._mapping) for row in connection.execute(statement.order_by(alert_table.c.raised_at.desc()))]


def subject_alerts(connection: Connection, study_id: str, subject_id: str) -> list[dict[str, Any]]:
    statement = select(alert_table).where(alert_table.c.study_id == study_id, alert_table.c.subject_id == subject_id)
    return [dict(row._mapping) for row in connection.execute(statement.order_by(alert_table.c.raised_at))]
