"""Read model of labs: subjects as labs sees them (capture's events), results with their grade, baselines, the
triage queue, mapped lab patient ids and alerts.

Results are the bulk (a million rows in one import): a batch's new results go in with one INSERT executemany and
its corrections with one upsert, not through the row-folding prefetch the smaller tables use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Integer, MetaData, String, Table, Text, select

from trialstack.capture.events import SUBJECT_FACT_EVENTS, follow_subject
from trialstack.labs.matching import SubjectFacts
from trialstack.labs.model import Baseline, PriorResult
from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.rowfold import Key, RowStore

readmodel_metadata = MetaData()

subject_table = Table(
    "rm_lab_subject",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("site_id", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("visit_dates", Text, nullable=False),
)
identifier_table = Table(
    "rm_lab_identifier",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("source", String(40), primary_key=True),
    Column("patient_id", String(80), primary_key=True),
    Column("subject_id", String(64), nullable=False),
)
RESULT_COLUMNS = (
    "study_id", "result_id", "subject_id", "site_id", "visit", "source", "accession", "lab_code", "test",
    "collected_at", "reported_at", "value", "unit", "is_numeric", "original_value", "original_unit", "low", "high",
    "flag", "lab_flags", "status", "version", "corrections", "grade", "term", "received_seq",
)  # fmt: skip
result_table = Table(
    "rm_lab_result",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("result_id", String(200), primary_key=True),
    Column("subject_id", String(64), nullable=False),
    Column("site_id", String(20), nullable=False),
    Column("visit", String(60)),
    Column("source", String(40), nullable=False),
    Column("accession", String(80), nullable=False),
    Column("lab_code", String(40), nullable=False),
    Column("test", String(40), nullable=False),
    Column("collected_at", String(40)),
    Column("reported_at", String(40)),
    Column("value", String(60), nullable=False),
    Column("unit", String(40)),
    Column("is_numeric", Boolean, nullable=False),
    Column("original_value", String(200), nullable=False),
    Column("original_unit", String(40)),
    Column("low", String(40)),
    Column("high", String(40)),
    Column("flag", String(4)),
    Column("lab_flags", String(40)),
    Column("status", String(20), nullable=False),
    Column("version", String(60), nullable=False),
    Column("corrections", Integer, nullable=False),
    Column("grade", Integer),
    Column("term", String(80)),
    Column("received_seq", Integer, nullable=False),
)
baseline_table = Table(
    "rm_lab_baseline",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("test", String(40), primary_key=True),
    Column("value", String(60), nullable=False),
    Column("abnormal", Boolean),
    Column("collected_at", String(40)),
)
triage_table = Table(
    "rm_lab_triage",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("triage_id", String(20), primary_key=True),
    Column("source", String(40), nullable=False),
    Column("patient_id", String(80), nullable=False),
    Column("accession", String(80), nullable=False),
    Column("lab_code", String(40), nullable=False),
    Column("test", String(40)),
    Column("collected_at", String(40)),
    Column("value", String(200), nullable=False),
    Column("unit", String(40)),
    Column("location", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("candidates", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("resolution", Text),
    Column("resolved_by", String(80)),
    Column("subject_id", String(64)),
    Column("observation", Text, nullable=False),
)
alert_table = Table(
    "rm_lab_alert",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("alert_id", String(240), primary_key=True),
    Column("result_id", String(200), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("site_id", String(20), nullable=False),
    Column("test", String(40), nullable=False),
    Column("term", String(80), nullable=False),
    Column("grade", Integer, nullable=False),
    Column("value", String(60), nullable=False),
    Column("unit", String(40)),
    Column("collected_at", String(40)),
    Column("status", String(12), nullable=False),
    Column("raised_at", String(40), nullable=False),
    Column("decision", Text),
    Column("decided_by", String(80)),
)

_RESULTS = frozenset({"LabResultReceived", "LabResultCorrected", "LabValueGraded"})
_TRIAGE = frozenset({"LabResultUnmatched", "LabResultAssigned", "LabResultRejected"})
_ALERTS = frozenset({"LabAlertRaised", "LabAlertConfirmed", "LabAlertDismissed"})
FOLDED = frozenset({*SUBJECT_FACT_EVENTS, *_RESULTS, *_TRIAGE, *_ALERTS, "LabIdentifierMapped"})


_RESULT_VALUES = itemgetter(*RESULT_COLUMNS)
_LOCAL_COLUMNS = frozenset({"study_id", "is_numeric", "corrections", "grade", "term", "received_seq"})
_PAYLOAD_COLUMNS = [name for name in RESULT_COLUMNS if name not in _LOCAL_COLUMNS]


def _result_row(event: RecordedEvent, payload: dict[str, Any], corrections: int) -> dict[str, Any]:
    row = {name: payload[name] for name in _PAYLOAD_COLUMNS}
    row.update(
        study_id=event.study_id,
        is_numeric=payload["numeric"],
        corrections=corrections,
        grade=None,
        term=None,
        received_seq=event.study_seq,
    )
    return row


class LabsReadModel:
    name = "labs.results"
    tables = (subject_table, identifier_table, result_table, baseline_table, triage_table, alert_table)
    event_types = FOLDED

    def apply(self, connection: Connection, events: Sequence[RecordedEvent]) -> None:
        rows = RowStore(connection)
        parsed = [(event, event.payload) for event in events]
        rows.prefetch_many(list(self._wanted(parsed).values()))
        new: dict[Key, dict[str, Any]] = {}
        changed: dict[Key, dict[str, Any]] = {}
        for event, payload in parsed:
            kind = event.event_type
            if kind in _RESULTS:
                self._result(connection, event, payload, new, changed, rows)
            elif kind in SUBJECT_FACT_EVENTS:
                key = (event.study_id, payload["subject_id"])
                row = follow_subject(rows.get(subject_table, key), kind, payload)
                if row is not None:
                    rows.put(subject_table, {"study_id": key[0], "subject_id": key[1], **row})
            elif kind in _TRIAGE:
                self._triage(event, rows)
            elif kind in _ALERTS:
                self._alert(event, rows)
            elif kind == "LabIdentifierMapped":
                rows.put(identifier_table, {"study_id": event.study_id, "source": payload["source"],
                                            "patient_id": payload["patient_id"],
                                            "subject_id": payload["subject_id"]})  # fmt: skip
        rows.flush()
        marker = "%s" if connection.dialect.name == "postgresql" else "?"
        columns = ", ".join(RESULT_COLUMNS)
        insert = f"INSERT INTO rm_lab_result ({columns}) VALUES ({', '.join([marker] * len(RESULT_COLUMNS))})"
        store.write(connection, insert, [_RESULT_VALUES(row) for row in new.values()])
        if changed:
            updates = ", ".join(f"{c} = excluded.{c}" for c in RESULT_COLUMNS[2:])
            upsert = f"{insert} ON CONFLICT (study_id, result_id) DO UPDATE SET {updates}"
            store.write(connection, upsert, [_RESULT_VALUES(row) for row in changed.values()])

    def _wanted(self, events: Sequence[tuple[RecordedEvent, dict[str, Any]]]) -> dict[str, tuple[Table, set[Key]]]:
        wanted: dict[str, tuple[Table, set[Key]]] = {}

        def want(table: Table, key: Key) -> None:
            wanted.setdefault(table.name, (table, set()))[1].add(key)

        for event, p in events:
            kind, study = event.event_type, event.study_id
            if kind in SUBJECT_FACT_EVENTS:
                want(subject_table, (study, p["subject_id"]))
            elif kind in ("LabResultReceived", "LabResultCorrected") and p["numeric"]:
                want(baseline_table, (study, p["subject_id"], p["test"]))
            elif kind in _TRIAGE:
                want(triage_table, (study, p["triage_id"]))
            elif kind in _ALERTS:
                want(alert_table, (study, p["alert_id"]))
        return wanted

    def _result(
        self,
        connection: Connection,
        event: RecordedEvent,
        p: dict[str, Any],
        new: dict[Key, dict[str, Any]],
        changed: dict[Key, dict[str, Any]],
        rows: RowStore,
    ) -> None:
        kind = event.event_type
        key = (event.study_id, p["result_id"])
        if kind == "LabValueGraded":
            row = new.get(key) or changed.get(key) or _stored_result(connection, key)
            if row is not None and (row["grade"] is None or p["grade"] > row["grade"]):
                row.update(grade=p["grade"], term=p["term"])
                if key not in new:
                    changed[key] = row
            return
        if kind == "LabResultReceived":
            new[key] = _result_row(event, p, 0)
        else:
            earlier = new.get(key) or changed.get(key) or _stored_result(connection, key)
            corrections = (earlier["corrections"] if earlier is not None else 0) + 1
            row = _result_row(event, p, corrections)
            if earlier is not None:
                row["received_seq"] = earlier["received_seq"]
            if key in new:
                new[key] = row
            else:
                changed[key] = row
        if p["numeric"]:
            self._baseline(event, p, rows)

    @staticmethod
    def _baseline(event: RecordedEvent, p: dict[str, Any], rows: RowStore) -> None:
        """The subject's earliest value of the test (by collection time) is its baseline."""
        key = (event.study_id, p["subject_id"], p["test"])
        current = rows.get(baseline_table, key)
        collected = p["collected_at"] or ""
        if (
            current is None
            or collected < (current["collected_at"] or "")
            or (collected == current["collected_at"] and event.event_type == "LabResultCorrected")
        ):
            abnormal = None if p["low"] is None and p["high"] is None else p["flag"] is not None
            rows.put(baseline_table, {"study_id": key[0], "subject_id": key[1], "test": key[2], "value": p["value"],
                                      "abnormal": abnormal, "collected_at": p["collected_at"]})  # fmt: skip

    @staticmethod
    def _triage(event: RecordedEvent, rows: RowStore) -> None:
        p, kind = event.payload, event.event_type
        key = (event.study_id, p["triage_id"])
        if kind == "LabResultUnmatched":
            rows.put(triage_table, {
                "study_id": key[0], "triage_id": key[1], "source": p["source"], "patient_id": p["patient_id"],
                "accession": p["accession"], "lab_code": p["lab_code"], "test": p["test"],
                "collected_at": p["collected_at"], "value": p["value"], "unit": p["unit"], "location": p["location"],
                "reason": p["reason"], "candidates": json.dumps(p["candidates"]), "status": "open",
                "received_at": event.recorded_at, "resolution": None, "resolved_by": None, "subject_id": None,
                "observation": json.dumps(p["observation"], sort_keys=True),
            })  # fmt: skip
            return
        row = rows.get(triage_table, key)
        if row is None:
            return
        if kind == "LabResultAssigned":
            row.update(status="assigned", subject_id=p["subject_id"], resolution=event.reason)
        else:
            row.update(status="rejected", resolution=p["reason"])
        row["resolved_by"] = event.actor_id
        rows.put(triage_table, row)

    @staticmethod
    def _alert(event: RecordedEvent, rows: RowStore) -> None:
        p, kind = event.payload, event.event_type
        key = (event.study_id, p["alert_id"])
        if kind == "LabAlertRaised":
            rows.put(alert_table, {
                "study_id": key[0], "alert_id": key[1], "result_id": p["result_id"], "subject_id": p["subject_id"],
                "site_id": p["site_id"], "test": p["test"], "term": p["term"], "grade": p["grade"],
                "value": p["value"], "unit": p["unit"], "collected_at": p["collected_at"], "status": "raised",
                "raised_at": event.recorded_at, "decision": None, "decided_by": None,
            })  # fmt: skip
            return
        row = rows.get(alert_table, key)
        if row is None:
            return
        confirmed = kind == "LabAlertConfirmed"
        decision = f"adverse event: {p['term']}" if confirmed else p["reason"]
        row.update(status="confirmed" if confirmed else "dismissed", decision=decision, decided_by=event.actor_id)
        rows.put(alert_table, row)


def _stored_result(connection: Connection, key: Key) -> dict[str, Any] | None:
    row = connection.execute(
        select(result_table).where(result_table.c.study_id == key[0], result_table.c.result_id == key[1])
    ).first()
    return dict(row._mapping) if row is not None else None


def _in_chunks(values: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def subject_facts(connection: Connection, study_id: str, subject_ids: Iterable[str]) -> dict[str, SubjectFacts]:
    wanted = sorted(set(subject_ids))
    found: dict[str, SubjectFacts] = {}
    for chunk in _in_chunks(wanted):
        for row in connection.execute(
            select(subject_table).where(subject_table.c.study_id == study_id, subject_table.c.subject_id.in_(chunk))
        ):
            found[row.subject_id] = SubjectFacts(row.subject_id, row.site_id, row.status, json.loads(row.visit_dates))
    return found


def mapped_subjects(connection: Connection, study_id: str, source: str, patient_ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(patient_ids))
    found: dict[str, str] = {}
    t = identifier_table
    for chunk in _in_chunks(wanted):
        for row in connection.execute(
            select(t.c.patient_id, t.c.subject_id).where(
                t.c.study_id == study_id, t.c.source == source, t.c.patient_id.in_(chunk)
            )
        ):
            found[row.patient_id] = row.subject_id
    return found


def prior_results(connection: Connection, study_id: str, result_ids: Iterable[str]) -> dict[str, PriorResult]:
    """Looked up by primary key through a join to a VALUES list (`RowStore`): an `IN` list of a batch's ids is
    planned as a scan on PostgreSQL while the table's statistics do not know the rows this import added."""
    rows = RowStore(connection)
    keys = [(study_id, result) for result in sorted(set(result_ids))]
    rows.prefetch(result_table, keys)
    found: dict[str, PriorResult] = {}
    for key in keys:
        row = rows.get(result_table, key)
        if row is not None:
            found[key[1]] = PriorResult(row["result_id"], row["subject_id"], row["value"], row["version"])
    return found


def baselines(
    connection: Connection, study_id: str, pairs: Iterable[tuple[str, str]]
) -> dict[str, dict[str, Baseline]]:
    """The baselines of these (subject, test) pairs, by primary key (see `prior_results`)."""
    rows = RowStore(connection)
    keys = [(study_id, subject, test) for subject, test in sorted(set(pairs))]
    rows.prefetch(baseline_table, keys)
    found: dict[str, dict[str, Baseline]] = {}
    for key in keys:
        row = rows.get(baseline_table, key)
        if row is not None:
            found.setdefault(key[1], {})[key[2]] = Baseline(Decimal(row["value"]), row["abnormal"], row["collected_at"])
    return found


def results_of_subject(connection: Connection, study_id: str, subject_id: str) -> list[dict[str, Any]]:
    t = result_table
    return [
        dict(row._mapping)
        for row in connection.execute(
            select(t).where(t.c.study_id == study_id, t.c.subject_id == subject_id).order_by(t.c.test, t.c.collected_at)
        )
    ]


def triage_items(connection: Connection, study_id: str, status: str | None = "open") -> list[dict[str, Any]]:
    t = triage_table
    statement = select(t).where(t.c.study_id == study_id)
    if status is not None:
        statement = statement.where(t.c.status == status)
    return [dict(row._mapping) for row in connection.execute(statement.order_by(t.c.received_at, t.c.triage_id))]


def triage_item(connection: Connection, study_id: str, triage_id: str) -> dict[str, Any] | None:
    t = triage_table
    row = connection.execute(select(t).where(t.c.study_id == study_id, t.c.triage_id == triage_id)).first()
    return dict(row._mapping) if row is not None else None


def alerts(
    connection: Connection, study_id: str, status: str | None = None, site_ids: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    t = alert_table
    statement = select(t).where(t.c.study_id == study_id)
    if status is not None:
        statement = statement.where(t.c.status == status)
    if site_ids is not None:
        statement = statement.where(t.c.site_id.in_(sorted(site_ids)))
    return [dict(row._mapping) for row in connection.execute(statement.order_by(t.c.raised_at, t.c.alert_id))]


def alert(connection: Connection, study_id: str, alert_id: str) -> dict[str, Any] | None:
    t = alert_table
    row = connection.execute(select(t).where(t.c.study_id == study_id, t.c.alert_id == alert_id)).first()
    return dict(row._mapping) if row is not None else None
