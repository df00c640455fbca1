"""Capture read models: subjects, visits, form instances and item values, folded from the subject streams."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Integer, MetaData, String, Table, Text, func, select

from trialstack.capture import events as ev
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.rowfold import FoldingProjection, Key, RowStore

readmodel_metadata = MetaData()

subject_table = Table(
    "rm_subject",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("screened_on", String(10)),
    Column("enrolled_on", String(10)),
    Column("ended_on", String(10)),
    Column("locked", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
)

visit_table = Table(
    "rm_visit",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("visit", String(60), primary_key=True),
    Column("visit_id", String(40), nullable=False),
    Column("visit_date", String(10), nullable=False),
)

form_table = Table(
    "rm_form",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("form", String(100), primary_key=True),
    Column("form_id", String(40), nullable=False),
    Column("visit", String(60)),
    Column("sdv_complete", Boolean, nullable=False),
    Column("frozen", Boolean, nullable=False),
    Column("last_saved_at", String(27), nullable=False),
)

item_table = Table(
    "rm_item",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("form", String(100), primary_key=True),
    Column("item", String(40), primary_key=True),
    Column("value", Text),
    Column("unit", String(40)),
    Column("not_done_reason", Text),
    Column("derived", Boolean, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("changes", Integer, nullable=False),
)

signature_table = Table(
    "rm_signature",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("signature_id", String(40), primary_key=True),
    Column("scope", String(100), nullable=False),
    Column("meaning", Text, nullable=False),
    Column("signer", String(200), nullable=False),
    Column("printed_name", String(200), nullable=False),
    Column("signed_at", String(27), nullable=False),
    Column("casebook_version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("valid", Boolean, nullable=False),
    Column("invalidated_by", Text),
)

_SIGNATURE_NAMES = {ev.CasebookSigned.__name__, ev.SignatureInvalidated.__name__}

_SUBJECT_EVENTS = {
    ev.SubjectScreened,
    ev.SubjectEnrolled,
    ev.SubjectScreenFailed,
    ev.SubjectWithdrawn,
    ev.SubjectCompleted,
    ev.CasebookLocked,
    ev.CasebookUnlocked,
}
_ITEM_EVENTS = {ev.ItemValueEntered, ev.ItemValueChanged, ev.ItemMarkedNotDone, ev.ItemValueDerived}
_FORM_EVENTS = {ev.SourceDataVerified, ev.SourceDataVerificationInvalidated, ev.FormFrozen, ev.FormUnfrozen}
_NAMES = {
    cls.__name__ for cls in _SUBJECT_EVENTS | _ITEM_EVENTS | _FORM_EVENTS | {ev.VisitDateRecorded}
} | _SIGNATURE_NAMES
_ITEM_NAMES = {cls.__name__ for cls in _ITEM_EVENTS}
_FORM_NAMES = {cls.__name__ for cls in _FORM_EVENTS}


class CasebookReadModel(FoldingProjection):
    name = "capture.casebook"
    tables = (subject_table, visit_table, form_table, item_table, signature_table)
    event_types = frozenset(_NAMES)

    def touches(self, event: RecordedEvent) -> Iterable[tuple[Table, Key]]:
        payload = event.payload
        subject = (event.study_id, payload["subject_id"])
        yield subject_table, subject
        if event.event_type == "VisitDateRecorded":
            yield visit_table, (*subject, payload["visit"])
        elif event.event_type in _ITEM_NAMES:
            yield form_table, (*subject, payload["form"])
            yield item_table, (*subject, payload["form"], payload["item"])
        elif event.event_type in _FORM_NAMES:
            yield form_table, (*subject, payload["form"])
            for item in payload.get("items", ()):
                yield item_table, (*subject, payload["form"], item)
        elif event.event_type in _SIGNATURE_NAMES:
            yield signature_table, (*subject, payload["signature_id"])

    def fold(self, event: RecordedEvent, rows: RowStore) -> None:
        payload = event.payload
        study, subject_id, kind = event.study_id, payload["subject_id"], event.event_type
        subject = rows.get(subject_table, (study, subject_id))
        if kind == "SubjectScreened":
            subject = {
                "study_id": study,
                "subject_id": subject_id,
                "site_id": payload["site_id"],
                "status": "screening",
                "screened_on": payload["screened_on"],
                "enrolled_on": None,
                "ended_on": None,
                "locked": False,
                "version": 0,
            }
        if subject is None:
            return
        subject["version"] = event.stream_version
        _fold_subject(kind, payload, subject)
        rows.put(subject_table, subject)
        if kind == "VisitDateRecorded":
            rows.put(
                visit_table,
                {
                    "study_id": study,
                    "subject_id": subject_id,
                    "visit": payload["visit"],
                    "visit_id": payload["visit"].split(".")[0],
                    "visit_date": payload["visit_date"],
                },
            )
        elif kind in _ITEM_NAMES:
            self._fold_item(event, payload, rows)
        elif kind in _FORM_NAMES:
            self._fold_form(event, payload, rows)
        elif kind == "CasebookSigned":
            rows.put(signature_table, {"study_id": study, **payload, "valid": True, "invalidated_by": None})
        elif kind == "SignatureInvalidated":
            signature = rows.get(signature_table, (study, subject_id, payload["signature_id"]))
            if signature is not None:
                signature.update(valid=False, invalidated_by=payload["changed"])
                rows.put(signature_table, signature)

    def _form_row(self, event: RecordedEvent, payload: dict[str, Any], rows: RowStore) -> dict[str, Any]:
        key = (event.study_id, payload["subject_id"], payload["form"])
        form = rows.get(form_table, key)
        if form is None:
            parts = payload["form"].split(".")
            is_log = len(parts) == 2 and parts[1].isdigit()
            form = {
                "study_id": event.study_id,
                "subject_id": payload["subject_id"],
                "form": payload["form"],
                "form_id": parts[0] if is_log else parts[-1],
                "visit": None if is_log else ".".join(parts[:-1]),
                "sdv_complete": False,
                "frozen": False,
                "last_saved_at": event.recorded_at,
            }
        return form

    def _fold_item(self, event: RecordedEvent, payload: dict[str, Any], rows: RowStore) -> None:
        form = self._form_row(event, payload, rows)
        form["last_saved_at"] = event.recorded_at
        rows.put(form_table, form)
        key = (event.study_id, payload["subject_id"], payload["form"], payload["item"])
        item = rows.get(item_table, key) or {
            "study_id": key[0],
            "subject_id": key[1],
            "form": key[2],
            "item": key[3],
            "value": None,
            "unit": None,
            "not_done_reason": None,
            "derived": False,
            "verified": False,
            "changes": -1,
        }
        item["changes"] += 1
        # A personal value's vault reference stays out (it is random per run, so rebuilds and seeded demos would
        # differ); pages reveal personal values from the casebook fold.
        item["value"] = None if payload.get("value_hash") else payload.get("value")
        item["unit"] = payload.get("unit")
        item["not_done_reason"] = payload.get("not_done_reason")
        item["derived"] = event.event_type == "ItemValueDerived"
        rows.put(item_table, item)

    def _fold_form(self, event: RecordedEvent, payload: dict[str, Any], rows: RowStore) -> None:
        form = self._form_row(event, payload, rows)
        kind = event.event_type
        if kind in ("FormFrozen", "FormUnfrozen"):
            form["frozen"] = kind == "FormFrozen"
        else:
            verified = kind == "SourceDataVerified"
            form["sdv_complete"] = bool(payload.get("form_complete")) if verified else False
            for item_id in payload["items"]:
                item = rows.get(item_table, (event.study_id, payload["subject_id"], payload["form"], item_id))
                if item is not None:
                    item["verified"] = verified
                    rows.put(item_table, item)
        rows.put(form_table, form)


def _fold_subject(kind: str, payload: dict[str, Any], subject: dict[str, Any]) -> None:
    if kind == "SubjectEnrolled":
        subject.update(status="enrolled", enrolled_on=payload["enrolled_on"])
    elif kind == "SubjectScreenFailed":
        subject.update(status="screen_failed", ended_on=payload["failed_on"])
    elif kind == "SubjectWithdrawn":
        subject.update(status="withdrawn", ended_on=payload["withdrawn_on"])
    elif kind == "SubjectCompleted":
        subject.update(status="completed", ended_on=payload["completed_on"])
    elif kind in ("CasebookLocked", "CasebookUnlocked"):
        subject["locked"] = kind == "CasebookLocked"


def next_subject_number(connection: Connection, study_id: str, site_id: str) -> int:
    count = connection.execute(
        select(func.count())
        .select_from(subject_table)
        .where(subject_table.c.study_id == study_id, subject_table.c.site_id == site_id)
    ).scalar_one()
    return int(count) + 1


def list_subjects(connection: Connection, study_id: str, sites: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Subjects of a study, optionally only at some sites (None: all sites)."""
    statement = select(subject_table).where(subject_table.c.study_id == study_id)
    if sites is not None:
        statement = statement.where(subject_table.c.site_id.in_(sorted(sites)))
    return [dict(row._mapping) for row in connection.execute(statement.order_by(subject_table.c.subject_id))]


def get_subject(connection: Connection, study_id: str, subject_id: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(subject_table).where(subject_table.c.study_id == study_id, subject_table.c.subject_id == subject_id)
    ).first()
    return dict(row._mapping) if row is not None else None


def subject_visits(connection: Connection, study_id: str, subject_id: str) -> list[dict[str, Any]]:
    statement = select(visit_table).where(visit_table.c.study_id == study_id, visit_table.c.subject_id == subject_id)
    return [dict(r._mapping) for r in connection.execute(statement.order_by(visit_table.c.visit_date))]


def subject_forms(connection: Connection, study_id: str, subject_id: str) -> list[dict[str, Any]]:
    statement = select(form_table).where(form_table.c.study_id == study_id, form_table.c.subject_id == subject_id)
    return [dict(r._mapping) for r in connection.execute(statement.order_by(form_table.c.form))]


def form_items(connection: Connection, study_id: str, subject_id: str, form: str) -> list[dict[str, Any]]:
    statement = select(item_table).where(
        item_table.c.study_id == study_id, item_table.c.subject_id == subject_id, item_table.c.form == form
    )
    return [dict(r._mapping) for r in connection.execute(statement)]


def subject_signatures(connection: Connection, study_id: str, subject_id: str) -> list[dict[str, Any]]:
    statement = select(signature_table).where(
        signature_table.c.study_id == study_id, signature_table.c.subject_id == subject_id
    )
    return [dict(r._mapping) for r in connection.execute(statement.order_by(signature_table.c.signed_at))]


@dataclass(frozen=True)
class SignatureState:
    """The latest casebook signature and whether it still stands (signed data unchanged since)."""

    signature_id: str
    signer: str
    printed_name: str
    meaning: str
    signed_at: str
    casebook_version: int
    content_hash: str
    valid: bool
    changed_by: str | None

    @property
    def casebook_hash(self) -> str:
        return self.content_hash


def latest_signature(connection: Connection, study_id: str, subject_id: str) -> SignatureState | None:
    """The most recent signature of the whole casebook (form-level signatures are listed by subject_signatures)."""
    rows = [row for row in subject_signatures(connection, study_id, subject_id) if row["scope"] == "casebook"]
    if not rows:
        return None
    row = rows[-1]
    return SignatureState(
        row["signature_id"], row["signer"], row["printed_name"], row["meaning"], row["signed_at"],
        row["casebook_version"], row["content_hash"], bool(row["valid"]), row["invalidated_by"],
    )  # fmt: skip


def study_items(connection: Connection, study_id: str) -> list[dict[str, Any]]:
    statement = select(item_table).where(item_table.c.study_id == study_id)
    return [dict(r._mapping) for r in connection.execute(statement.order_by(*item_table.primary_key.columns))]
