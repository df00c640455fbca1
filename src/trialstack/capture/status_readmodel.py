"""The casebook status read model: what the subject list, the study home and the SDV list show of each subject,
kept as rows, so those pages read a page of rows instead of folding every casebook on every request.

Per subject: status, lock, how many form instances hold data, the state of the latest casebook signature. Per
visit instance: date, window, the day after which it is overdue, and its summary. Per form instance: status,
required items missing, SDV items due, SDV done, frozen, failing checks, and the work list it is on ("verify":
complete with items still to verify; "incomplete": in progress).

The rows are computed by capture's own views (`casebook_matrix`, `form_status`, `sdv_items`) from the casebook
folded from the subject's stream and the StudyVersion in force (the study's latest StudyVersionPublished, read
from the ledger). A subject's rows are recomputed whenever its stream grows, every subject's rows of a study when
a new version is published; nothing else goes in (no clock: "overdue" is `due_by < today`, asked by the page). So
the rows depend on the ledger alone and `rebuild` gives them back identically.

Personal values (DESIGN.md §2) play no part: the fold reads events as stored (vault references, never the vault),
and personal items count as answered without a value, so an erasure changes nothing here.

Open query counts are not here: queries are another context. Pages compose these rows with the queries read
model's counts for the same subjects (one SQL each).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    func,
    or_,
    select,
)

from trialstack.capture import events as ev
from trialstack.capture.checks import StudyRules, rules_for
from trialstack.capture.decide import sdv_items
from trialstack.capture.model import Casebook, FormState, ItemState, evolve
from trialstack.capture.refs import FormKey, subject_stream_id
from trialstack.capture.views import casebook_matrix, form_status
from trialstack.ledger import store
from trialstack.ledger.cache import StreamStateCache
from trialstack.ledger.canonical import canonical_bytes
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import decode
from trialstack.ledger.wiring import ALL_EVENTS
from trialstack.protocol.events import StudyVersionPublished
from trialstack.protocol.version import definition_from_canonical_json, study_version

status_metadata = MetaData()

SUBJECT_STREAM = "subject"
ACTIVE_STATUSES = ("screening", "enrolled")
VERIFY = "verify"
INCOMPLETE = "incomplete"

status_study_table = Table(
    "rm_status_study",
    status_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("version_hash", String(64), nullable=False),
    Column("published_seq", BigInteger, nullable=False),
)

status_subject_table = Table(
    "rm_status_subject",
    status_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("site_id", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("locked", Boolean, nullable=False),
    Column("forms", Integer, nullable=False),
    Column("signature", String(10), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_rm_status_subject_site", "study_id", "site_id", "subject_id"),
)

status_visit_table = Table(
    "rm_status_visit",
    status_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("visit", String(60), primary_key=True),
    Column("site_id", String(20), nullable=False),
    Column("position", Integer, nullable=False),
    Column("visit_id", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("visit_date", String(10)),
    Column("earliest", String(10)),
    Column("latest", String(10)),
    Column("out_of_window", Boolean, nullable=False),
    Column("summary", String(20), nullable=False),
    Column("due_by", String(10)),
    Index("ix_rm_status_visit_due", "study_id", "due_by", "site_id"),
)

status_form_table = Table(
    "rm_status_form",
    status_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("form", String(100), primary_key=True),
    Column("site_id", String(20), nullable=False),
    Column("position", Integer, nullable=False),
    Column("visit", String(60)),
    Column("form_id", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("missing", Integer, nullable=False),
    Column("sdv_due", Integer, nullable=False),
    Column("sdv_complete", Boolean, nullable=False),
    Column("frozen", Boolean, nullable=False),
    Column("failing", Integer, nullable=False),
    Column("in_grid", Boolean, nullable=False),
    Column("work", String(12)),
    Index("ix_rm_status_form_work", "study_id", "work", "subject_id", "position", "site_id"),
)

_CAPTURE_EVENTS = frozenset(cls.__name__ for cls in ev.CaptureEvent.__subclasses__())
_PUBLISHED = StudyVersionPublished.__name__
_CHUNK = 200

Row = dict[str, Any]
SubjectKey = tuple[str, str]


def visit_summary(visit_date: str | None, statuses: Iterable[str]) -> str:
    """not_started / in_progress / complete for a visit as a whole (every form complete: complete)."""
    seen = set(statuses)
    if not visit_date or seen <= {"not_started"}:
        return "not_started"
    return "complete" if seen == {"complete"} else "in_progress"


def _without_personal_values(rules: StudyRules, casebook: Casebook) -> Casebook:
    """Personal items answered but with no value: rules never read a vault reference as if it were the value."""
    personal: frozenset[tuple[str, str]] = rules.personal
    if not personal:
        return casebook
    forms: dict[FormKey, FormState] = {}
    for key, state in casebook.forms.items():
        masked = {
            item_id: ItemState(erased=True)
            for item_id, entry in state.items.items()
            if (key.form_id, item_id) in personal and entry.value is not None
        }
        if masked:
            forms[key] = replace(state, items=MappingProxyType({**state.items, **masked}))
    if not forms:
        return casebook
    return replace(casebook, forms=MappingProxyType({**casebook.forms, **forms}))


def _signature_state(casebook: Casebook) -> str:
    latest = [s for s in casebook.signatures.values() if s.scope == "casebook"]
    if not latest:
        return "none"
    return "valid" if latest[-1].valid else "invalid"


def status_rows(rules: StudyRules | None, casebook: Casebook) -> tuple[Row, list[Row], list[Row]]:
    """The subject's row, its visit rows and its form rows: what the pages read instead of the casebook."""
    study, subject_id, site = casebook.study_id, casebook.subject_id, casebook.site_id
    status = casebook.status.value if casebook.status is not None else ""
    subject = {
        "study_id": study, "subject_id": subject_id, "site_id": site, "status": status, "locked": casebook.locked,
        "forms": len(casebook.forms), "signature": _signature_state(casebook), "version": casebook.version,
    }  # fmt: skip
    if rules is None:
        return subject, [], []
    view = _without_personal_values(rules, casebook)
    matrix = casebook_matrix(rules, view)
    active = status in ACTIVE_STATUSES
    visits: list[Row] = []
    forms: dict[str, Row] = {}

    def form_row(raw: dict[str, Any], visit: str | None, in_grid: bool) -> None:
        key = FormKey.parse(raw["form"])
        state = view.forms.get(key)
        due = 0
        if state is not None:
            due = len([i for i in sdv_items(rules, key, state.items) if i not in state.verified and i in state.items])
        row_status = raw["status"]
        work = VERIFY if row_status == "complete" and due else INCOMPLETE if row_status == "in_progress" else None
        forms[raw["form"]] = {
            "study_id": study, "subject_id": subject_id, "form": raw["form"], "site_id": site,
            "position": len(forms), "visit": visit, "form_id": raw["form_id"], "name": raw["name"],
            "status": row_status, "missing": len(raw.get("required_missing", ())), "sdv_due": due,
            "sdv_complete": bool(raw.get("sdv_complete")), "frozen": bool(raw.get("frozen")),
            "failing": len(raw.get("failing_checks", ())), "in_grid": in_grid, "work": work,
        }  # fmt: skip

    for visit in matrix["visits"]:
        window = visit.get("window")
        for raw in visit["forms"]:
            form_row(raw, visit["visit"], True)
        late = window["latest"] if window is not None and not visit.get("date") and active else None
        visits.append(
            {
                "study_id": study, "subject_id": subject_id, "visit": visit["visit"], "site_id": site,
                "position": len(visits), "visit_id": visit["visit_id"], "name": visit["name"],
                "visit_date": visit.get("date"), "earliest": window["earliest"] if window else None,
                "latest": window["latest"] if window else None, "out_of_window": bool(visit.get("out_of_window")),
                "summary": visit_summary(visit.get("date"), (f["status"] for f in visit["forms"])), "due_by": late,
            }
        )  # fmt: skip
    for raw in matrix["log_forms"]:
        form_row(raw, None, True)
    for key in sorted(view.forms):
        if str(key) not in forms:
            shown = form_status(rules, view, key)
            form_row(shown.__dict__, str(key.visit) if key.visit is not None else None, False)
    return subject, visits, list(forms.values())


class CasebookStatusReadModel:
    """The projection: recomputes the status rows of every subject whose stream a batch touches."""

    name = "capture.casebook_status"
    tables = (status_study_table, status_subject_table, status_visit_table, status_form_table)
    event_types = ALL_EVENTS

    def __init__(self, cache_size: int = 4096) -> None:
        self._casebooks = StreamStateCache(cache_size)
        """(stream version, hash of that event, casebook): checked against the ledger before each use, so a state
        folded in a unit of work that was rolled back is never built upon."""
        self._rules: dict[str, StudyRules] = {}

    def apply(self, connection: Connection, events: Sequence[RecordedEvent]) -> None:
        published: dict[str, RecordedEvent] = {}
        batch: dict[SubjectKey, list[RecordedEvent]] = defaultdict(list)
        for event in events:
            if event.event_type == _PUBLISHED:
                published[event.study_id] = event
            elif event.stream_type == SUBJECT_STREAM:
                subject_id = event.stream_id[len(event.study_id) + 1 :]
                batch[(event.study_id, subject_id)].append(event)
        if not published and not batch:
            return
        reshaped = [study_id for study_id, event in published.items() if self._publish(connection, study_id, event)]
        targets = {key: max(e.stream_version for e in stream) for key, stream in batch.items()}
        for study_id in reshaped:
            sql = f"SELECT subject_id, version FROM {status_subject_table.name} WHERE study_id = {_marker(connection)}"
            (listed,) = store.read_many(connection, [(sql, (study_id,))], prepare=False)
            for subject_id, version in listed:
                targets.setdefault((study_id, str(subject_id)), int(version))
        casebooks = self._fold(connection, targets, batch)
        rules = {study_id: self._rules_of(connection, study_id) for study_id in {key[0] for key in targets}}
        self._write(connection, [(rules[key[0]], casebook) for key, casebook in casebooks.items()])

    def _publish(self, connection: Connection, study_id: str, event: RecordedEvent) -> bool:
        """Record the version now in force; True when it changes what the rows are computed from (the schedule or
        the forms), so every subject of the study must be recomputed: an amendment that changes neither (a new
        consent version, an edit check, eligibility) costs no fold."""
        payload = event.payload
        before = self._rules_of(connection, study_id)
        after = self._rules[payload["version_hash"]] = _parse_rules(payload)
        marker = _marker(connection)
        table = status_study_table.name
        store.write(connection, f"DELETE FROM {table} WHERE study_id = {marker}", [(study_id,)])
        store.write(
            connection,
            f"INSERT INTO {table} (study_id, version_hash, published_seq) VALUES ({marker}, {marker}, {marker})",
            [(study_id, payload["version_hash"], event.study_seq)],
        )
        return before is None or _shape(before) != _shape(after)

    def _rules_of(self, connection: Connection, study_id: str) -> StudyRules | None:
        """The rules of the version in force, as this projection last recorded it (another process may have
        published since this one last looked, so the row is read every time; the parsed rules are cached)."""
        sql = (
            f"SELECT version_hash, published_seq FROM {status_study_table.name} WHERE study_id = {_marker(connection)}"
        )
        (found,) = store.read_many(connection, [(sql, (study_id,))], prepare=False)
        if not found:
            return None
        row = found[0]
        version_hash, seq = str(row[0]), int(row[1])
        if version_hash not in self._rules:
            (event,) = store.read_study(connection, study_id, after_seq=seq - 1, limit=1)
            self._rules[version_hash] = _parse_rules(event.payload)
        return self._rules[version_hash]

    def _fold(
        self, connection: Connection, targets: dict[SubjectKey, int], batch: dict[SubjectKey, list[RecordedEvent]]
    ) -> dict[SubjectKey, Casebook]:
        """Each target subject's casebook at its target version: from the cached state when the ledger still
        holds the event it was folded to, with the batch's events when they follow on, else from the ledger."""
        starts: dict[SubjectKey, tuple[int, str, Casebook]] = {}
        for key, version in targets.items():
            cached = self._casebooks.get(SUBJECT_STREAM, subject_stream_id(*key))
            if cached is not None and cached[0] <= version:
                starts[key] = cached
        held = _still_in_ledger(connection, {key: (start[0], start[1]) for key, start in starts.items()})
        result: dict[SubjectKey, Casebook] = {}
        for key, version in sorted(targets.items()):
            start = starts.get(key) if key in held else None
            state = start[2] if start is not None else Casebook(*key)
            if state.version == version:
                result[key] = state
                continue
            following = [e for e in batch.get(key, ()) if state.version < e.stream_version <= version]
            expected = list(range(state.version + 1, version + 1))
            if [e.stream_version for e in following] != expected:
                following = _read_stream(connection, subject_stream_id(*key), state.version, version)
            for recorded in following:
                if recorded.event_type in _CAPTURE_EVENTS:
                    state = evolve(decode(recorded), state)
            state = replace(state, version=version)
            if following:
                self._casebooks.put(SUBJECT_STREAM, subject_stream_id(*key), (version, following[-1].hash, state))
            result[key] = state
        return result

    def _write(self, connection: Connection, subjects: list[tuple[StudyRules | None, Casebook]]) -> None:
        """Write the rows that changed (a save usually changes one form row, its visit and the subject's version);
        delete the rows that are gone."""
        wanted: dict[str, list[Row]] = {table.name: [] for table in _ROW_TABLES}
        for rules, casebook in subjects:
            if casebook.exists:
                subject, visits, forms = status_rows(rules, casebook)
                wanted[status_subject_table.name].append(subject)
                wanted[status_visit_table.name].extend(visits)
                wanted[status_form_table.name].extend(forms)
        keys = sorted({(casebook.study_id, casebook.subject_id) for _, casebook in subjects})
        plans = [(table, _sql(connection, table)) for table in _ROW_TABLES]
        reads = [sql.reads_of(keys) for _, sql in plans]
        answers = iter(store.read_many(connection, [read for group in reads for read in group], prepare=False))
        for (table, sql), group in zip(plans, reads, strict=True):
            stored = {row[: len(sql.keys)]: row for _ in group for row in next(answers)}
            new = {tuple(row[k] for k in sql.keys): tuple(row[c] for c in sql.columns) for row in wanted[table.name]}
            store.write(connection, sql.delete, [key for key in stored if key not in new])
            store.write(connection, sql.upsert, [row for key, row in new.items() if stored.get(key) != row])


class _TableSql:
    """Driver-level SQL for one status table, built once per dialect: the unit of work's hot path compiles nothing."""

    def __init__(self, table: Table, marker: str) -> None:
        self.marker = marker
        self.keys = [column.name for column in table.primary_key.columns]
        self.columns = self.keys + [c.name for c in table.columns if c.name not in self.keys]
        self._select = f"SELECT {', '.join(self.columns)} FROM {table.name} WHERE study_id = {marker} AND subject_id IN"
        self.delete = f"DELETE FROM {table.name} WHERE " + " AND ".join(f"{k} = {marker}" for k in self.keys)
        values = ", ".join(f"{c} = excluded.{c}" for c in self.columns if c not in self.keys)
        self.upsert = (
            f"INSERT INTO {table.name} ({', '.join(self.columns)}) VALUES ({', '.join([marker] * len(self.columns))})"
            f" ON CONFLICT ({', '.join(self.keys)}) DO UPDATE SET {values}"
        )

    def reads_of(self, subjects: list[SubjectKey]) -> list[store.Read]:
        """The SELECTs of the stored rows of some subjects, columns in `self.columns` order (keys first)."""
        reads: list[store.Read] = []
        by_study: dict[str, list[str]] = defaultdict(list)
        for study_id, subject_id in subjects:
            by_study[study_id].append(subject_id)
        for study_id, ids in by_study.items():
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                reads.append((f"{self._select} ({', '.join([self.marker] * len(chunk))})", (study_id, *chunk)))
        return reads


_ROW_TABLES = (status_subject_table, status_visit_table, status_form_table)
_SQL: dict[tuple[str, str], _TableSql] = {}


def _sql(connection: Connection, table: Table) -> _TableSql:
    dialect = connection.dialect.name
    found = _SQL.get((dialect, table.name))
    if found is None:
        found = _SQL[(dialect, table.name)] = _TableSql(table, "%s" if dialect == "postgresql" else "?")
    return found


def _marker(connection: Connection) -> str:
    return "%s" if connection.dialect.name == "postgresql" else "?"


_SHAPES: dict[str, str] = {}


def _shape(rules: StudyRules) -> str:
    """A digest of what the rows are computed from: the schedule (visits, windows, forms per visit, log forms) and
    the forms (items, types, required, derived, show_if, sdv, personal). Two versions with the same shape give the
    same rows for every casebook."""
    found = _SHAPES.get(rules.version_hash)
    if found is None:
        definition = rules.definition
        shape = {"schedule": definition.schedule.model_dump(mode="json"), "forms": [
            form.model_dump(mode="json") for form in definition.forms
        ]}  # fmt: skip
        found = _SHAPES[rules.version_hash] = hashlib.sha256(
            orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
    return found


def _parse_rules(payload: dict[str, Any]) -> StudyRules:
    version = study_version(definition_from_canonical_json(canonical_bytes(payload["definition"])))
    return rules_for(version)


def _still_in_ledger(connection: Connection, positions: dict[SubjectKey, tuple[int, str]]) -> set[SubjectKey]:
    """The subjects whose stream still has, at the given version, the event with the given hash."""
    held: set[SubjectKey] = set()
    wanted = {(subject_stream_id(*key), version): (key, digest) for key, (version, digest) in positions.items()}
    items = sorted(wanted)
    marker = "%s" if connection.dialect.name == "postgresql" else "?"
    term = f"(stream_type = {marker} AND stream_id = {marker} AND stream_version = {marker})"
    reads: list[store.Read] = []
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        sql = f"SELECT stream_id, stream_version, hash FROM ledger_event WHERE {' OR '.join([term] * len(chunk))}"
        reads.append((sql, tuple(value for pair in chunk for value in (SUBJECT_STREAM, *pair))))
    for found in store.read_many(connection, reads, prepare=False):
        for stream_id, version, digest in found:
            key, expected = wanted[(str(stream_id), int(version))]
            if digest == expected:
                held.add(key)
    return held


def _read_stream(connection: Connection, stream_id: str, after: int, upto: int) -> list[RecordedEvent]:
    sql = store.select_events_sql(
        connection,
        "stream_type = {p} AND stream_id = {p} AND stream_version > {p} AND stream_version <= {p}",
        "stream_version",
    )
    (rows,) = store.read_many(connection, [(sql, (SUBJECT_STREAM, stream_id, after, upto))], prepare=False)
    return [store.to_event(row) for row in rows]


# Reading: what the pages ask, a page of rows at a time.


def _at_sites(column: Any, sites: frozenset[str] | None) -> ColumnElement[bool]:
    return column.in_(sorted(sites)) if sites is not None else and_(True)


def count_subjects(connection: Connection, study_id: str, sites: frozenset[str] | None = None) -> int:
    table = status_subject_table
    statement = select(func.count()).select_from(table)
    statement = statement.where(table.c.study_id == study_id, _at_sites(table.c.site_id, sites))
    return int(connection.execute(statement).scalar_one())


def subject_page(
    connection: Connection, study_id: str, sites: frozenset[str] | None = None, *, offset: int = 0, limit: int = 50
) -> list[Row]:
    """Subjects in subject order, one page."""
    table = status_subject_table
    statement = (
        select(table)
        .where(table.c.study_id == study_id, _at_sites(table.c.site_id, sites))
        .order_by(table.c.subject_id)
        .offset(offset)
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(statement)]


def visits_of(
    connection: Connection, study_id: str, subject_ids: Sequence[str], *, scheduled_only: bool = False
) -> dict[str, list[Row]]:
    """The visit rows of some subjects, in matrix order per subject; `scheduled_only` leaves out the instances of
    repeating visits (the subject list shows one column per scheduled visit)."""
    table = status_visit_table
    result: dict[str, list[Row]] = {subject_id: [] for subject_id in subject_ids}
    if not subject_ids:
        return result
    statement = select(table).where(table.c.study_id == study_id, table.c.subject_id.in_(list(subject_ids)))
    if scheduled_only:
        statement = statement.where(table.c.visit == table.c.visit_id)
    names = [column.name for column in table.columns]
    for row in connection.execute(statement.order_by(table.c.subject_id, table.c.position)):
        result[row[1]].append(dict(zip(names, row, strict=True)))
    return result


def _work_filter(study_id: str, work: str, sites: frozenset[str] | None) -> list[ColumnElement[bool]]:
    table = status_form_table
    return [table.c.study_id == study_id, table.c.work == work, _at_sites(table.c.site_id, sites)]


def count_work(connection: Connection, study_id: str, work: str, sites: frozenset[str] | None = None) -> int:
    """How many form instances are on a work list (VERIFY or INCOMPLETE)."""
    statement = select(func.count()).select_from(status_form_table).where(*_work_filter(study_id, work, sites))
    return int(connection.execute(statement).scalar_one())


def work_page(
    connection: Connection,
    study_id: str,
    work: str,
    sites: frozenset[str] | None = None,
    *,
    offset: int = 0,
    limit: int = 50,
) -> list[Row]:
    """Form instances on a work list, by subject then matrix order."""
    table = status_form_table
    statement = (
        select(table)
        .where(*_work_filter(study_id, work, sites))
        .order_by(table.c.subject_id, table.c.position)
        .offset(offset)
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(statement)]


def _overdue_filter(study_id: str, today: str, sites: frozenset[str] | None) -> list[ColumnElement[bool]]:
    table = status_visit_table
    return [table.c.study_id == study_id, table.c.due_by < today, _at_sites(table.c.site_id, sites)]


def count_overdue(connection: Connection, study_id: str, today: str, sites: frozenset[str] | None = None) -> int:
    """Visits whose window closed before `today` without a visit date, of subjects still on study."""
    statement = select(func.count()).select_from(status_visit_table).where(*_overdue_filter(study_id, today, sites))
    return int(connection.execute(statement).scalar_one())


def overdue_page(
    connection: Connection, study_id: str, today: str, sites: frozenset[str] | None = None, *, limit: int = 50
) -> list[Row]:
    """Overdue visits, the longest overdue first."""
    table = status_visit_table
    statement = (
        select(table)
        .where(*_overdue_filter(study_id, today, sites))
        .order_by(table.c.due_by, table.c.subject_id, table.c.position)
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(statement)]


def _unsigned_filter(study_id: str, sites: frozenset[str] | None) -> list[ColumnElement[bool]]:
    table = status_subject_table
    return [
        table.c.study_id == study_id,
        table.c.forms > 0,
        or_(table.c.signature == "none", table.c.signature == "invalid"),
        _at_sites(table.c.site_id, sites),
    ]


def count_unsigned(connection: Connection, study_id: str, sites: frozenset[str] | None = None) -> int:
    """Casebooks with data and no standing casebook signature (never signed, or signed data changed since)."""
    statement = select(func.count()).select_from(status_subject_table).where(*_unsigned_filter(study_id, sites))
    return int(connection.execute(statement).scalar_one())


def unsigned_page(
    connection: Connection, study_id: str, sites: frozenset[str] | None = None, *, limit: int = 50
) -> list[Row]:
    table = status_subject_table
    statement = select(table).where(*_unsigned_filter(study_id, sites)).order_by(table.c.subject_id).limit(limit)
    return [dict(row._mapping) for row in connection.execute(statement)]
