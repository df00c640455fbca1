"""Read model of reconcile: what it follows of other contexts (subjects and consent, central lab results, local lab
values in the EDC) and its own discrepancies, folded from events only, so `rebuild` gives the same tables.

The policy (handlers.py) reads these rows for the subjects of a batch in one read per table, folds the batch's own
events on top with the same `fold` (`MemoryRows`), and decides from the result.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from types import MappingProxyType
from typing import Any, Protocol

from sqlalchemy import BigInteger, Boolean, Column, Connection, Index, MetaData, String, Table, Text, select

from trialstack.capture.events import SUBJECT_FACT_EVENTS, follow_subject
from trialstack.consent.events import ConsentRecordedOnPaper, ConsentSigned, ConsentWithdrawn
from trialstack.labs.events import LabResultCorrected, LabResultReceived
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.rowfold import FoldingProjection, Key, Row, key_of
from trialstack.protocol.definition import StudyDefinition
from trialstack.reconcile.checks import CentralResult, ConsentRecord, Discrepancy, LocalValue, SubjectFacts
from trialstack.reconcile.events import RECONCILE_EVENTS, Addressee, DiscrepancyKind
from trialstack.reconcile.model import SubjectLabs

readmodel_metadata = MetaData()

study_table = Table(
    "rm_reconcile_study",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("local_items", Text, nullable=False),
)
subject_table = Table(
    "rm_reconcile_subject",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("site_id", String(20), nullable=False),
    Column("status", String(20)),
    Column("ended_on", String(10)),
    Column("visit_dates", Text, nullable=False),
    Column("consents", Text, nullable=False),
)
result_table = Table(
    "rm_reconcile_result",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("result_id", String(100), primary_key=True),
    Column("site_id", String(20), nullable=False),
    Column("visit", String(60)),
    Column("test", String(40), nullable=False),
    Column("source", String(40), nullable=False),
    Column("value", String(100), nullable=False),
    Column("unit", String(40)),
    Column("numeric", Boolean, nullable=False),
    Column("collected_on", String(10)),
    Column("received_on", String(10), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_rm_reconcile_result_sample", "study_id", "subject_id", "visit", "test"),
)
local_table = Table(
    "rm_reconcile_local",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("form", String(100), primary_key=True),
    Column("item", String(40), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("unit", String(40)),
)
discrepancy_table = Table(
    "rm_reconcile_discrepancy",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("discrepancy_id", String(200), primary_key=True),
    Column("subject_id", String(64), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("site_id", String(20), nullable=False),
    Column("visit", String(60)),
    Column("test", String(40)),
    Column("form", String(100), nullable=False),
    Column("item", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("addressed_to", String(40), nullable=False),
    Column("sources", Text, nullable=False),
    Column("status", String(10), nullable=False),
)

_RESULTS = RESULT_EVENTS = frozenset({LabResultReceived.__name__, LabResultCorrected.__name__})
_CONSENT = frozenset({ConsentSigned.__name__, ConsentRecordedOnPaper.__name__, ConsentWithdrawn.__name__})
ITEM_EVENTS = frozenset({"ItemValueEntered", "ItemValueChanged", "ItemMarkedNotDone"})
_OWN = frozenset(cls.__name__ for cls in RECONCILE_EVENTS)
_PUBLISHED = "StudyVersionPublished"
_ENDED_ON = {"SubjectWithdrawn": "withdrawn_on", "SubjectScreenFailed": "failed_on"}
FOLLOWED = frozenset({*SUBJECT_FACT_EVENTS, *_CONSENT, *_RESULTS, *ITEM_EVENTS})
"""Other contexts' events reconcile follows (none is registered blinded)."""


class Rows(Protocol):
    """Where a fold reads and writes rows: the database batch (`RowStore`) or the policy's `MemoryRows`."""

    def get(self, table: Table, key: Key) -> Row | None: ...

    def put(self, table: Table, row: Row) -> None: ...

    def delete(self, table: Table, key: Key) -> None: ...


class MemoryRows:
    """Rows held in memory: the policy seeds them from the read model, then folds its batch in."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[Key, Row | None]] = defaultdict(dict)

    def get(self, table: Table, key: Key) -> Row | None:
        row = self._rows[table.name].get(key)
        return dict(row) if row is not None else None

    def put(self, table: Table, row: Row) -> None:
        self._rows[table.name][key_of(table, row)] = row

    def delete(self, table: Table, key: Key) -> None:
        self._rows[table.name][key] = None

    def merge(self, other: MemoryRows) -> None:
        """Take the rows `other` holds (read for other subjects)."""
        for name, rows in other._rows.items():
            self._rows[name].update(rows)

    def rows(self, table: Table) -> Iterator[Row]:
        return (row for row in self._rows[table.name].values() if row is not None)


def local_items(definition: dict[str, Any] | StudyDefinition) -> list[str]:
    """The `FORM.ITEM`s of the study's local-lab values, from a definition or its canonical JSON."""
    if isinstance(definition, StudyDefinition):
        return sorted({t.local_item for t in (definition.labs.tests if definition.labs else ()) if t.local_item})
    tests = (definition.get("labs") or {}).get("tests") or []
    return sorted({str(t["local_item"]) for t in tests if t.get("local_item")})


def form_and_item(form: str, item: str) -> str:
    """`WEEK4.LB`, `K` → `LB.K`: the form of an instance and the item, as `local_item` names them."""
    return f"{form.split('.')[-1]}.{item}"


class ReconcileReadModel(FoldingProjection):
    name = "reconcile.reconciliation"
    tables = (study_table, subject_table, result_table, local_table, discrepancy_table)
    event_types = frozenset({*FOLLOWED, *_OWN, _PUBLISHED})

    def touches(self, event: RecordedEvent) -> Iterable[tuple[Table, Key]]:
        payload, kind, study = event.payload, event.event_type, event.study_id
        if kind == _PUBLISHED or kind in ITEM_EVENTS:
            yield study_table, (study,)
        if kind in SUBJECT_FACT_EVENTS or kind in _CONSENT:
            yield subject_table, (study, payload["subject_id"])
        elif kind in _RESULTS:
            yield result_table, (study, payload["subject_id"], payload["result_id"])
        elif kind in ITEM_EVENTS:
            yield local_table, (study, payload["subject_id"], payload["form"], payload["item"])
        elif kind in _OWN:
            yield discrepancy_table, (study, payload["discrepancy_id"])

    def fold(self, event: RecordedEvent, rows: Rows) -> None:
        kind = event.event_type
        if kind == _PUBLISHED:
            items = local_items(event.payload["definition"])
            rows.put(study_table, {"study_id": event.study_id, "local_items": json.dumps(items)})
        elif kind in SUBJECT_FACT_EVENTS:
            _subject(event, rows)
        elif kind in _CONSENT:
            _consent(event, rows)
        elif kind in _RESULTS:
            _result(event, rows)
        elif kind in ITEM_EVENTS:
            _local(event, rows)
        elif kind in _OWN:
            _discrepancy(event, rows)


def _subject(event: RecordedEvent, rows: Rows) -> None:
    key = (event.study_id, event.payload["subject_id"])
    row = follow_subject(rows.get(subject_table, key), event.event_type, event.payload)
    if row is None:
        return
    row.update(study_id=key[0], subject_id=key[1])
    row.setdefault("consents", "{}")
    row.setdefault("ended_on", None)
    if event.event_type in _ENDED_ON:
        row["ended_on"] = event.payload[_ENDED_ON[event.event_type]]
    rows.put(subject_table, row)


def _consent(event: RecordedEvent, rows: Rows) -> None:
    payload = event.payload
    key = (event.study_id, payload["subject_id"])
    row = rows.get(subject_table, key)
    if row is None:
        if "site_id" not in payload:
            return
        row = {"study_id": key[0], "subject_id": key[1], "site_id": payload["site_id"], "status": None,
               "ended_on": None, "visit_dates": "{}", "consents": "{}"}  # fmt: skip
    consents = json.loads(row["consents"])
    held = consents.setdefault(payload["document_id"], {"signed_on": None, "withdrawn_on": None})
    if event.event_type == ConsentWithdrawn.__name__:
        if payload.get("part") is not None:
            return
        held["withdrawn_on"] = payload["withdrawn_on"]
    else:
        on = str(payload.get("signed_on") or payload["signed_at"])[:10]
        held["signed_on"] = min(held["signed_on"] or on, on)
        if held["withdrawn_on"] is not None and held["withdrawn_on"] <= on:
            held["withdrawn_on"] = None  # signed again after the withdrawal
    row["consents"] = json.dumps(consents, sort_keys=True)
    rows.put(subject_table, row)


def _result(event: RecordedEvent, rows: Rows) -> None:
    p = event.payload
    key = (event.study_id, p["subject_id"], p["result_id"])
    before = rows.get(result_table, key)
    if p["status"] == "cancelled":
        rows.delete(result_table, key)
        return
    rows.put(result_table, {
        "study_id": key[0], "subject_id": key[1], "result_id": key[2], "site_id": p["site_id"], "visit": p["visit"],
        "test": p["test"], "source": p["source"], "value": p["value"], "unit": p["unit"], "numeric": p["numeric"],
        "collected_on": p["collected_at"][:10] if p["collected_at"] else None,
        "received_on": before["received_on"] if before else event.recorded_at[:10],
        "seq": before["seq"] if before else event.study_seq,
    })  # fmt: skip


def _local(event: RecordedEvent, rows: Rows) -> None:
    p = event.payload
    study = rows.get(study_table, (event.study_id,))
    if study is None or form_and_item(p["form"], p["item"]) not in json.loads(study["local_items"]):
        return
    key = (event.study_id, p["subject_id"], p["form"], p["item"])
    value = p.get("value") if event.event_type != "ItemMarkedNotDone" else None
    if value is None or p.get("value_hash") is not None:
        rows.delete(local_table, key)
        return
    rows.put(local_table, {"study_id": key[0], "subject_id": key[1], "form": key[2], "item": key[3],
                           "value": value, "unit": p.get("unit")})  # fmt: skip


def _discrepancy(event: RecordedEvent, rows: Rows) -> None:
    p = event.payload
    rows.put(discrepancy_table, {
        "study_id": event.study_id, "discrepancy_id": p["discrepancy_id"], "subject_id": p["subject_id"],
        "kind": p["kind"], "site_id": p["site_id"], "visit": p["visit"], "test": p["test"], "form": p["form"],
        "item": p["item"], "detail": p["detail"], "addressed_to": p["addressed_to"],
        "sources": json.dumps(p["sources"]),
        "status": "open" if event.event_type == "ReconciliationDiscrepancyFound" else "resolved",
    })  # fmt: skip


_CHUNK = 500


def load_subjects(
    connection: Connection, study_id: str, subject_ids: Sequence[str], definition: StudyDefinition
) -> MemoryRows:
    """The rows of some subjects (facts, results, local values, open discrepancies): one read per table and 500
    subjects, whatever the number of events that named them. The study row comes from `definition`."""
    rows = MemoryRows()
    rows.put(study_table, {"study_id": study_id, "local_items": json.dumps(local_items(definition))})
    for start in range(0, len(subject_ids), _CHUNK):
        chunk = list(subject_ids[start : start + _CHUNK])
        for table in (subject_table, result_table, local_table, discrepancy_table):
            statement = select(table).where(table.c.study_id == study_id, table.c.subject_id.in_(chunk))
            if table is discrepancy_table:
                statement = statement.where(table.c.status == "open")
            for found in connection.execute(statement):
                rows.put(table, dict(found._mapping))
    return rows


SampleKey = tuple[str, str, str]
"""(subject, visit instance, test): the results one central sample's test is checked against."""


def subjects_with_lab_data(connection: Connection, study_id: str, subject_ids: Iterable[str]) -> set[str]:
    """Which of these subjects have a central result or an open discrepancy (one driver-level query per 500): the
    others have nothing to check, which is most of the EDC's saves, so this runs on nearly every save."""
    wanted = sorted(set(subject_ids))
    marker = "%s" if connection.dialect.name == "postgresql" else "?"
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        among = ", ".join([marker] * len(chunk))
        sql = (f"SELECT subject_id FROM rm_reconcile_result WHERE study_id = {marker} AND subject_id IN ({among})"
               f" UNION SELECT subject_id FROM rm_reconcile_discrepancy WHERE study_id = {marker}"
               f" AND subject_id IN ({among}) AND status = 'open'")  # fmt: skip
        found.update(row[0] for row in connection.exec_driver_sql(sql, (study_id, *chunk, study_id, *chunk)))
    return found


def load_samples(
    connection: Connection, study_id: str, keys: Sequence[SampleKey], definition: StudyDefinition
) -> MemoryRows:
    """What the checks of some samples need: their subjects' facts, local values and open discrepancies, and the
    central results of exactly these (subject, visit, test) keys, not every result of the subject (a subject has
    hundreds by the end of a study; a lab import re-checks a few per batch)."""
    subjects = sorted({key[0] for key in keys})
    rows = MemoryRows()
    rows.put(study_table, {"study_id": study_id, "local_items": json.dumps(local_items(definition))})
    for start in range(0, len(subjects), _CHUNK):
        chunk = subjects[start : start + _CHUNK]
        for table in (subject_table, local_table, discrepancy_table):
            statement = select(table).where(table.c.study_id == study_id, table.c.subject_id.in_(chunk))
            if table is discrepancy_table:
                statement = statement.where(table.c.status == "open")
            for found in connection.execute(statement):
                rows.put(table, dict(found._mapping))
    marker = "%s" if connection.dialect.name == "postgresql" else "?"
    columns = ", ".join(f"t.{column.name}" for column in result_table.columns)
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), _CHUNK):
        samples = ordered[start : start + _CHUNK]
        values = ", ".join([f"({marker}, {marker}, {marker})"] * len(samples))
        sql = (f"SELECT {columns} FROM (VALUES {values}) AS v JOIN rm_reconcile_result AS t ON t.study_id = {marker}"
               " AND t.subject_id = v.column1 AND t.visit = v.column2 AND t.test = v.column3")  # fmt: skip
        parameters = (*[part for key in samples for part in key], study_id)
        names = [column.name for column in result_table.columns]
        for found in connection.exec_driver_sql(sql, parameters):
            rows.put(result_table, dict(zip(names, found, strict=True)))
    return rows


def load_study(connection: Connection, study_id: str, definition: StudyDefinition) -> MemoryRows:
    """Every subject's facts, central results and open missing-sample discrepancies (what a sweep needs)."""
    rows = MemoryRows()
    rows.put(study_table, {"study_id": study_id, "local_items": json.dumps(local_items(definition))})
    for table in (subject_table, result_table, discrepancy_table):
        statement = select(table).where(table.c.study_id == study_id)
        if table is discrepancy_table:
            statement = statement.where(table.c.status == "open", table.c.kind == DiscrepancyKind.SAMPLE_MISSING)
        for found in connection.execute(statement):
            rows.put(table, dict(found._mapping))
    return rows


def subject_states(rows: MemoryRows) -> dict[str, SubjectLabs]:
    """The rows grouped into each subject's state, for every subject they mention."""
    facts: dict[str, SubjectFacts] = {}
    for row in rows.rows(subject_table):
        consents = {d: ConsentRecord(c["signed_on"], c["withdrawn_on"]) for d, c in json.loads(row["consents"]).items()}
        facts[row["subject_id"]] = SubjectFacts(
            row["subject_id"], row["site_id"], row["status"], row["ended_on"],
            MappingProxyType(json.loads(row["visit_dates"])), MappingProxyType(consents),
        )  # fmt: skip
    results: dict[str, list[tuple[int, CentralResult]]] = defaultdict(list)
    for row in rows.rows(result_table):
        results[row["subject_id"]].append((row["seq"], CentralResult(
            row["result_id"], row["subject_id"], row["site_id"], row["visit"], row["test"], row["source"],
            row["value"], row["unit"], bool(row["numeric"]), row["collected_on"], row["received_on"],
        )))  # fmt: skip
    local: dict[str, dict[tuple[str, str], LocalValue]] = defaultdict(dict)
    for row in rows.rows(local_table):
        local[row["subject_id"]][(row["form"], row["item"])] = LocalValue(
            row["form"], row["item"], row["value"], row["unit"]
        )
    open_: dict[str, dict[str, Discrepancy]] = defaultdict(dict)
    for row in rows.rows(discrepancy_table):
        if row["status"] == "open":
            open_[row["subject_id"]][row["discrepancy_id"]] = _discrepancy_of(row)
    subjects = set(facts) | set(results) | set(local) | set(open_)
    return {
        subject_id: SubjectLabs(
            subject_id,
            facts.get(subject_id),
            tuple(
                result for _seq, result in sorted(results[subject_id], key=lambda pair: (pair[0], pair[1].result_id))
            ),
            MappingProxyType(local[subject_id]),
            MappingProxyType(open_[subject_id]),
        )
        for subject_id in sorted(subjects)
    }


def _discrepancy_of(row: Row) -> Discrepancy:
    return Discrepancy(
        row["discrepancy_id"], DiscrepancyKind(row["kind"]), row["subject_id"], row["site_id"], row["visit"],
        row["test"], row["form"], row["item"], row["detail"], Addressee(row["addressed_to"]),
        tuple(json.loads(row["sources"])),
    )  # fmt: skip


def list_discrepancies(
    connection: Connection, study_id: str, *, status: str | None = None, subject_id: str | None = None
) -> list[Discrepancy]:
    """The study's discrepancies (open, resolved or both), in id order."""
    statement = select(discrepancy_table).where(discrepancy_table.c.study_id == study_id)
    if status is not None:
        statement = statement.where(discrepancy_table.c.status == status)
    if subject_id is not None:
        statement = statement.where(discrepancy_table.c.subject_id == subject_id)
    rows = connection.execute(statement.order_by(discrepancy_table.c.discrepancy_id))
    return [_discrepancy_of(dict(row._mapping)) for row in rows]
