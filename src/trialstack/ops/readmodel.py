"""Read model of ops: the facts behind the KRIs, folded from other contexts' events in their unit of work.

Subjects, visits, forms, queries, edit checks and kits as ops sees them (from capture's, queries', ecoa's and irt's
events), and the status last recorded per KRI and site (ops' own KriThresholdCrossed). No blinded event is read:
nothing here can tell a blinded user what a subject receives. `ops.figures` reads these tables into KRIs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Integer, MetaData, String, Table

from trialstack.capture.events import SUBJECT_STATUS_AFTER
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.rowfold import FoldingProjection, Key, RowStore
from trialstack.protocol.symbols import VISIT_DATE

readmodel_metadata = MetaData()

study_table = Table(
    "rm_ops_study",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("ae_form", String(40), nullable=False),
    Column("ae_item", String(40), nullable=False),
    Column("ae_value", String(200), nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)
subject_table = Table(
    "rm_ops_subject",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("screened_on", String(10), nullable=False),
    Column("enrolled_on", String(10)),
    Column("failed_on", String(10)),
    Column("ended_on", String(10)),
    Column("randomized_on", String(10)),
    Column("epro_done", Integer, nullable=False),
    Column("epro_missed", Integer, nullable=False),
)
visit_table = Table(
    "rm_ops_visit",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("visit", String(60), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("visit_id", String(40), nullable=False),
    Column("visit_date", String(10)),
    Column("forms_entered", Integer, nullable=False),
    Column("kits", Integer, nullable=False),
    Column("out_of_window", Boolean, nullable=False),
)
form_table = Table(
    "rm_ops_form",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("form", String(100), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("form_id", String(40), nullable=False),
    Column("visit", String(60)),
    Column("entered_on", String(10), nullable=False),
    Column("lag_days", Integer),
    Column("sdv_complete", Boolean, nullable=False),
    Column("ae", Boolean, nullable=False),
    Column("serious", Boolean, nullable=False),
)
query_table = Table(
    "rm_ops_query",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("query_id", String(64), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("subject_id", String(64), nullable=False),
    Column("form", String(100), nullable=False),
    Column("item", String(40), nullable=False),
    Column("status", String(12), nullable=False),
    Column("opened_on", String(10), nullable=False),
    Column("closed_on", String(10)),
    Column("days_to_close", Integer),
)
check_table = Table(
    "rm_ops_check",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("check_id", String(64), primary_key=True),
    Column("form", String(100), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("item", String(40), nullable=False),
    Column("window_check", Boolean, nullable=False),
    Column("failing", Boolean, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("last_failed_on", String(10), nullable=False),
)
kit_table = Table(
    "rm_ops_kit",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("kit", String(40), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("shipment_id", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("changed_on", String(10), nullable=False),
)
kri_table = Table(
    "rm_ops_kri",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("kri", String(40), primary_key=True),
    Column("site_id", String(20), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("value", String(40)),
    Column("threshold", String(40)),
    Column("since", String(10), nullable=False),
)

_SUBJECT = frozenset({*SUBJECT_STATUS_AFTER, "QuestionnaireSubmitted", "DiaryEntryMissed", "SubjectRandomized"})
_ITEMS = frozenset({"ItemValueEntered", "ItemValueChanged", "ItemMarkedNotDone"})
_SDV = frozenset({"SourceDataVerified", "SourceDataVerificationInvalidated"})
_CHECKS = frozenset({"EditCheckFailed", "EditCheckResolved"})
_QUERIES = frozenset({"QueryOpened", "QueryAnswered", "QueryRequeried", "QueryClosed", "QueryCancelled"})
_KITS = frozenset({"ShipmentRequested", "KitsQuarantined", "KitsReleased", "KitsRejected"})
FOLDED = frozenset(
    {*_SUBJECT, *_ITEMS, *_SDV, *_CHECKS, *_QUERIES, *_KITS}
    | {"VisitDateRecorded", "KitDispensed", "StudyVersionPublished", "KriThresholdCrossed"}
)
"""Every event type ops reads: none of them is registered blinded (a test holds it to that)."""
_KIT_STATUS = {"KitsQuarantined": "quarantined", "KitsReleased": "shipped", "KitsRejected": "rejected"}


def form_parts(form: str) -> tuple[str, str | None]:
    """A form instance's form id and visit instance: `WEEK2.VS` → (VS, WEEK2), `AE.3` → (AE, None)."""
    parts = form.split(".")
    if parts[-1].isascii() and parts[-1].isdigit():
        return parts[0], None
    return parts[-1], ".".join(parts[:-1]) or None


def is_window_check(check_id: str, form: str, item: str) -> bool:
    """Capture's window check of a visit: `WEEK2-WINDOW` on the visit instance, item VISIT_DATE."""
    return item == VISIT_DATE and check_id == f"{form.split('.')[0]}-WINDOW"


def _day(event: RecordedEvent) -> str:
    return event.recorded_at[:10]


def _days(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days


class OpsReadModel(FoldingProjection):
    name = "ops.kris"
    tables = (study_table, subject_table, visit_table, form_table, query_table, check_table, kit_table, kri_table)
    event_types = FOLDED

    def touches(self, event: RecordedEvent) -> Iterable[tuple[Table, Key]]:
        payload, kind, study = event.payload, event.event_type, event.study_id
        yield study_table, (study,)
        subject = payload.get("subject_id")
        if subject is not None and kind not in _QUERIES:
            yield subject_table, (study, subject)
        if kind == "VisitDateRecorded" or kind == "KitDispensed":
            yield visit_table, (study, subject, payload["visit"])
        if kind in _ITEMS or kind in _SDV:
            yield form_table, (study, subject, payload["form"])
            visit = form_parts(payload["form"])[1]
            if visit is not None:
                yield visit_table, (study, subject, visit)
        if kind in _CHECKS:
            yield check_table, (study, subject, payload["check_id"], payload["form"])
            if is_window_check(payload["check_id"], payload["form"], payload["item"]):
                yield visit_table, (study, subject, payload["form"])
        if kind in _QUERIES:
            yield query_table, (study, payload["query_id"])
        if kind in _KITS:
            yield from ((kit_table, (study, kit)) for kit in payload["kits"])
        if kind == "KitDispensed":
            yield kit_table, (study, payload["kit"])
        if kind == "KriThresholdCrossed":
            yield kri_table, (study, payload["kri"], payload["site_id"])

    def fold(self, event: RecordedEvent, rows: RowStore) -> None:
        kind, study_id = event.event_type, event.study_id
        study = rows.get(study_table, (study_id,)) or {
            "study_id": study_id, "ae_form": "AE", "ae_item": "AESER", "ae_value": "Y", "last_seq": 0,
        }  # fmt: skip
        study["last_seq"] = max(study["last_seq"], event.study_seq)
        if kind == "StudyVersionPublished":
            source = (event.payload["definition"].get("kris") or {}).get("adverse_events") or {}
            study.update(ae_form=source.get("form", "AE"), ae_item=source.get("serious_item", "AESER"),
                         ae_value=source.get("serious_value", "Y"))  # fmt: skip
        rows.put(study_table, study)
        if kind in _SUBJECT:
            self._subject(event, rows)
        elif kind == "VisitDateRecorded":
            self._visit_date(event, rows)
        elif kind in _ITEMS:
            self._item(event, rows, study)
        elif kind in _SDV:
            self._sdv(event, rows)
        elif kind in _CHECKS:
            self._check(event, rows)
        elif kind in _QUERIES:
            self._query(event, rows)
        elif kind in _KITS or kind == "KitDispensed":
            self._kits(event, rows)
        elif kind == "KriThresholdCrossed":
            p = event.payload
            rows.put(kri_table, {
                "study_id": study_id, "kri": p["kri"], "site_id": p["site_id"], "status": p["to_status"],
                "value": p["value"], "threshold": p["threshold"], "since": p["as_of"],
            })  # fmt: skip

    def _subject(self, event: RecordedEvent, rows: RowStore) -> None:
        payload, kind = event.payload, event.event_type
        key = (event.study_id, payload["subject_id"])
        if kind == "SubjectScreened":
            rows.put(subject_table, {
                "study_id": key[0], "subject_id": key[1], "site_id": payload["site_id"], "status": "screening",
                "screened_on": payload["screened_on"], "enrolled_on": None, "failed_on": None, "ended_on": None,
                "randomized_on": None, "epro_done": 0, "epro_missed": 0,
            })  # fmt: skip
            return
        row = rows.get(subject_table, key)
        if row is None:
            return
        if kind in SUBJECT_STATUS_AFTER:
            row["status"] = SUBJECT_STATUS_AFTER[kind]
            on = next(payload[name] for name in ("enrolled_on", "failed_on", "withdrawn_on", "completed_on")
                      if name in payload)  # fmt: skip
            if kind == "SubjectEnrolled":
                row["enrolled_on"] = on
            else:
                row["ended_on"] = on
                if kind == "SubjectScreenFailed":
                    row["failed_on"] = on
        elif kind == "SubjectRandomized":
            row["randomized_on"] = payload["randomized_on"]
        elif kind == "DiaryEntryMissed":
            row["epro_missed"] += 1
        elif kind == "QuestionnaireSubmitted" and _is_day(payload["entry"]):
            row["epro_done"] += 1
        rows.put(subject_table, row)

    def _visit_row(self, rows: RowStore, study_id: str, subject_id: str, visit: str) -> dict[str, Any] | None:
        found = rows.get(visit_table, (study_id, subject_id, visit))
        if found is not None:
            return found
        subject = rows.get(subject_table, (study_id, subject_id))
        if subject is None:
            return None
        return {"study_id": study_id, "subject_id": subject_id, "visit": visit, "site_id": subject["site_id"],
                "visit_id": visit.split(".")[0], "visit_date": None, "forms_entered": 0, "kits": 0,
                "out_of_window": False}  # fmt: skip

    def _visit_date(self, event: RecordedEvent, rows: RowStore) -> None:
        payload = event.payload
        visit = self._visit_row(rows, event.study_id, payload["subject_id"], payload["visit"])
        if visit is not None:
            visit["visit_date"] = payload["visit_date"]
            rows.put(visit_table, visit)

    def _item(self, event: RecordedEvent, rows: RowStore, study: dict[str, Any]) -> None:
        payload, kind = event.payload, event.event_type
        key = (event.study_id, payload["subject_id"], payload["form"])
        form = rows.get(form_table, key)
        form_id, visit_key = form_parts(payload["form"])
        if form is None:
            subject = rows.get(subject_table, key[:2])
            if subject is None or kind == "ItemValueChanged":
                return
            visit = self._visit_row(rows, *key[:2], visit_key) if visit_key is not None else None
            entered = _day(event)
            lag = _days(visit["visit_date"], entered) if visit is not None and visit["visit_date"] else None
            form = {"study_id": key[0], "subject_id": key[1], "form": key[2], "site_id": subject["site_id"],
                    "form_id": form_id, "visit": visit_key, "entered_on": entered, "lag_days": lag,
                    "sdv_complete": False, "ae": form_id == study["ae_form"], "serious": False}  # fmt: skip
            if visit is not None:
                visit["forms_entered"] += 1
                rows.put(visit_table, visit)
        if form["ae"] and payload["item"] == study["ae_item"]:
            form["serious"] = kind != "ItemMarkedNotDone" and payload.get("value") == study["ae_value"]
        rows.put(form_table, form)

    def _sdv(self, event: RecordedEvent, rows: RowStore) -> None:
        payload = event.payload
        form = rows.get(form_table, (event.study_id, payload["subject_id"], payload["form"]))
        if form is not None:
            form["sdv_complete"] = event.event_type == "SourceDataVerified" and bool(payload["form_complete"])
            rows.put(form_table, form)

    def _check(self, event: RecordedEvent, rows: RowStore) -> None:
        p, failed = event.payload, event.event_type == "EditCheckFailed"
        key = (event.study_id, p["subject_id"], p["check_id"], p["form"])
        window = is_window_check(p["check_id"], p["form"], p["item"])
        check = rows.get(check_table, key) or {
            "study_id": key[0], "subject_id": key[1], "check_id": key[2], "form": key[3], "site_id": p["site_id"],
            "item": p["item"], "window_check": window, "failing": False, "failures": 0, "last_failed_on": _day(event),
        }  # fmt: skip
        check["failing"] = failed
        if failed:
            check["failures"] += 1
            check["last_failed_on"] = _day(event)
        rows.put(check_table, check)
        if window:
            visit = self._visit_row(rows, event.study_id, p["subject_id"], p["form"])
            if visit is not None:
                visit["out_of_window"] = failed
                rows.put(visit_table, visit)

    def _query(self, event: RecordedEvent, rows: RowStore) -> None:
        p, kind = event.payload, event.event_type
        key = (event.study_id, p["query_id"])
        if kind == "QueryOpened":
            rows.put(query_table, {
                "study_id": key[0], "query_id": key[1], "site_id": p["site_id"], "subject_id": p["subject_id"],
                "form": p["form"], "item": p["item"], "status": "open", "opened_on": p["opened_on"],
                "closed_on": None, "days_to_close": None,
            })  # fmt: skip
            return
        query = rows.get(query_table, key)
        if query is None:
            return
        query["status"] = {"QueryAnswered": "answered", "QueryRequeried": "open", "QueryClosed": "closed",
                           "QueryCancelled": "cancelled"}[kind]  # fmt: skip
        if kind == "QueryClosed":
            query["closed_on"] = _day(event)
            query["days_to_close"] = max(_days(query["opened_on"], query["closed_on"]), 0)
        rows.put(query_table, query)

    def _kits(self, event: RecordedEvent, rows: RowStore) -> None:
        p, kind, day = event.payload, event.event_type, _day(event)
        if kind == "ShipmentRequested":
            shipped = {"study_id": event.study_id, "site_id": p["site_id"], "shipment_id": p["shipment_id"],
                       "status": "shipped", "changed_on": day}  # fmt: skip
            for kit in p["kits"]:
                rows.put(kit_table, {**shipped, "kit": kit})
            return
        if kind == "KitDispensed":
            visit = self._visit_row(rows, event.study_id, p["subject_id"], p["visit"])
            if visit is not None:
                visit["kits"] += 1
                rows.put(visit_table, visit)
        for kit in _kits_of(p):
            row = rows.get(kit_table, (event.study_id, kit))
            if row is not None:  # kits still at the depot are not any site's risk
                row.update(status=_KIT_STATUS.get(kind, "dispensed"), changed_on=day)
                rows.put(kit_table, row)


def _kits_of(payload: dict[str, Any]) -> Iterator[str]:
    yield from payload.get("kits", [payload["kit"]] if "kit" in payload else [])


def _is_day(entry: str) -> bool:
    """A diary entry is named by its day (2026-01-05); a visit questionnaire by its visit."""
    try:
        date.fromisoformat(entry)
    except ValueError:
        return False
    return True
