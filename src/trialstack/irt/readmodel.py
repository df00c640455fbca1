"""Read model of irt: subjects as irt sees them (capture's events), randomizations, kits, shipments, unblindings.

Columns that reveal treatment (`arm`, a kit's `treatment`) are read only through functions that take `unblinded`
and leave them out otherwise: a blinded page or answer never holds them, not even hidden.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, Text, select

from trialstack.capture.events import SUBJECT_FACT_EVENTS, follow_subject
from trialstack.irt import events as ev
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.rowfold import FoldingProjection, Key, RowStore

readmodel_metadata = MetaData()

subject_table = Table(
    "rm_irt_subject",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("visit_dates", Text, nullable=False),
    Column("number", String(20)),
    Column("stratum", String(200)),
    Column("factors", Text),
    Column("stratum_values", Text),
    Column("randomized_on", String(10)),
    Column("arm", String(40)),
    Column("unblinded_on", String(10)),
    Column("unblinded_role", String(40)),
)

kit_table = Table(
    "rm_irt_kit",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("kit", String(40), primary_key=True),
    Column("treatment", String(40), nullable=False),
    Column("lot", String(40), nullable=False),
    Column("expiry", String(10), nullable=False),
    Column("location", String(40), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("shipment_id", String(20)),
    Column("subject_id", String(64)),
    Column("visit", String(40)),
    Column("dispensed_on", String(10)),
    Column("returned_on", String(10)),
    Column("units_returned", Integer),
    Column("condition", String(20)),
)

shipment_table = Table(
    "rm_irt_shipment",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("shipment_id", String(20), primary_key=True),
    Column("depot", String(40), nullable=False),
    Column("site_id", String(20), nullable=False, index=True),
    Column("reason", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("kits", Integer, nullable=False),
    Column("requested_on", String(10), nullable=False),
    Column("dispatched_on", String(10)),
    Column("tracking", String(80)),
    Column("received_on", String(10)),
    Column("missing", Integer),
    Column("temperature_excursion", Integer),
    Column("note", Text),
)

unblinding_table = Table(
    "rm_irt_unblinding",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("subject_id", String(64), nullable=False),
    Column("number", String(20), nullable=False),
    Column("site_id", String(20), nullable=False),
    Column("username", String(64), nullable=False),
    Column("role", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("unblinded_on", String(10), nullable=False),
)

_KIT_EVENTS = frozenset({"ShipmentRequested", "ShipmentReceived", "KitsQuarantined", "KitsReleased", "KitsRejected"})
_SHIPMENT_EVENTS = frozenset({"ShipmentRequested", "ShipmentDispatched", "ShipmentReceived"})
_SUBJECT_EVENTS = frozenset({*SUBJECT_FACT_EVENTS, "SubjectRandomized", "TreatmentAllocated"})


def _kits_of(payload: dict[str, Any]) -> list[str]:
    return [*payload.get("kits", []), *payload.get("missing", [])]


class IrtReadModel(FoldingProjection):
    name = "irt.supply"
    tables = (subject_table, kit_table, shipment_table, unblinding_table)
    event_types = frozenset(
        {
            *SUBJECT_FACT_EVENTS,
            *(cls.__name__ for cls in (*ev.RANDOMIZATION_EVENTS, *ev.SUPPLY_EVENTS)),
        }
    )

    def touches(self, event: RecordedEvent) -> Iterable[tuple[Table, Key]]:
        payload, kind = event.payload, event.event_type
        if kind in _SUBJECT_EVENTS or kind == "EmergencyUnblinded":
            yield subject_table, (event.study_id, payload["subject_id"])
        if kind in _SHIPMENT_EVENTS:
            yield shipment_table, (event.study_id, payload["shipment_id"])
        if kind in ("KitDispensed", "KitReturned"):
            yield kit_table, (event.study_id, payload["kit"])
        elif kind in _KIT_EVENTS:
            for kit in _kits_of(payload):
                yield kit_table, (event.study_id, kit)

    def fold(self, event: RecordedEvent, rows: RowStore) -> None:
        kind = event.event_type
        if kind in _SUBJECT_EVENTS or kind == "EmergencyUnblinded":
            self._subject(event, rows)
        if kind == "EmergencyUnblinded":
            p = event.payload
            rows.put(unblinding_table, {
                "study_id": event.study_id, "seq": event.study_seq, "subject_id": p["subject_id"],
                "number": p["number"], "site_id": p["site_id"], "username": p["username"], "role": p["role"],
                "reason": p["reason"], "unblinded_on": p["unblinded_on"],
            })  # fmt: skip
        if kind in _SHIPMENT_EVENTS:
            self._shipment(event, rows)
        if kind == "KitsRegistered" or kind in _KIT_EVENTS or kind in ("KitDispensed", "KitReturned"):
            self._kits(event, rows)

    def _subject(self, event: RecordedEvent, rows: RowStore) -> None:
        payload, kind = event.payload, event.event_type
        key = (event.study_id, payload["subject_id"])
        made = {"study_id": key[0], "subject_id": key[1], "number": None, "stratum": None, "factors": None,
                "stratum_values": None, "randomized_on": None, "arm": None, "unblinded_on": None,
                "unblinded_role": None}  # fmt: skip
        row = follow_subject(made if kind == "SubjectScreened" else rows.get(subject_table, key), kind, payload)
        if row is None:
            return
        if kind in SUBJECT_FACT_EVENTS:
            rows.put(subject_table, row)
            return
        if kind == "SubjectRandomized":
            row.update(number=payload["number"], stratum=payload["stratum"], randomized_on=payload["randomized_on"],
                       factors=json.dumps(payload["factors"], sort_keys=True),
                       stratum_values=json.dumps(payload["values"], sort_keys=True))  # fmt: skip
        elif kind == "TreatmentAllocated":
            row["arm"] = payload["arm"]
        elif kind == "EmergencyUnblinded":
            row.update(unblinded_on=payload["unblinded_on"], unblinded_role=payload["role"])
        rows.put(subject_table, row)

    def _shipment(self, event: RecordedEvent, rows: RowStore) -> None:
        payload, kind = event.payload, event.event_type
        key = (event.study_id, payload["shipment_id"])
        if kind == "ShipmentRequested":
            rows.put(shipment_table, {
                "study_id": key[0], "shipment_id": key[1], "depot": payload["depot"], "site_id": payload["site_id"],
                "reason": payload["reason"], "status": "requested", "kits": len(payload["kits"]),
                "requested_on": payload["requested_on"], "dispatched_on": None, "tracking": None, "received_on": None,
                "missing": None, "temperature_excursion": None, "note": None,
            })  # fmt: skip
            return
        row = rows.get(shipment_table, key)
        if row is None:
            return
        if kind == "ShipmentDispatched":
            row.update(status="dispatched", dispatched_on=payload["dispatched_on"], tracking=payload.get("tracking"))
        else:
            excursion = int(payload["temperature_excursion"])
            row.update(status="received", received_on=payload["received_on"], missing=len(payload["missing"]),
                       temperature_excursion=excursion, note=payload.get("note"))  # fmt: skip
        rows.put(shipment_table, row)

    def _kits(self, event: RecordedEvent, rows: RowStore) -> None:
        payload, kind = event.payload, event.event_type
        if kind == "KitsRegistered":
            for k in payload["kits"]:
                rows.put(kit_table, {
                    "study_id": event.study_id, "kit": k["kit"], "treatment": k["treatment"], "lot": k["lot"],
                    "expiry": k["expiry"], "location": payload["depot"], "status": "at_depot", "shipment_id": None,
                    "subject_id": None, "visit": None, "dispensed_on": None, "returned_on": None,
                    "units_returned": None, "condition": None,
                })  # fmt: skip
            return
        changes = _kit_changes(event)
        for number, change in changes.items():
            row = rows.get(kit_table, (event.study_id, number))
            if row is not None:
                row.update(change)
                rows.put(kit_table, row)


def _kit_changes(event: RecordedEvent) -> dict[str, dict[str, Any]]:
    payload, kind = event.payload, event.event_type
    if kind == "ShipmentRequested":
        return {k: {"status": "in_transit", "shipment_id": payload["shipment_id"]} for k in payload["kits"]}
    if kind == "ShipmentReceived":
        received = {k: {"status": "available", "location": payload["site_id"]} for k in payload["kits"]}
        return received | {k: {"status": "missing"} for k in payload["missing"]}
    if kind in ("KitsQuarantined", "KitsReleased", "KitsRejected"):
        status = {"KitsQuarantined": "quarantined", "KitsReleased": "available", "KitsRejected": "rejected"}[kind]
        return {k: {"status": status} for k in payload["kits"]}
    if kind == "KitDispensed":
        return {payload["kit"]: {"status": "dispensed", "subject_id": payload["subject_id"], "visit": payload["visit"],
                                 "dispensed_on": payload["dispensed_on"]}}  # fmt: skip
    returned = {"status": "returned", "returned_on": payload["returned_on"], "condition": payload["condition"],
                "units_returned": payload.get("units_returned")}  # fmt: skip
    return {payload["kit"]: returned}


def _without_arm(row: dict[str, Any], unblinded: bool) -> dict[str, Any]:
    if not unblinded:
        row.pop("arm", None)
        row.pop("treatment", None)
    return row


def subject_row(connection: Connection, study_id: str, subject_id: str, *, unblinded: bool) -> dict[str, Any] | None:
    row = connection.execute(
        select(subject_table).where(subject_table.c.study_id == study_id, subject_table.c.subject_id == subject_id)
    ).first()
    return _without_arm(dict(row._mapping), unblinded) if row is not None else None


def visit_dates(text: str) -> dict[str, date]:
    return {visit: date.fromisoformat(day) for visit, day in json.loads(text).items() if "." not in visit}


def subjects(
    connection: Connection, study_id: str, *, unblinded: bool, sites: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    statement = select(subject_table).where(subject_table.c.study_id == study_id)
    if sites is not None:
        statement = statement.where(subject_table.c.site_id.in_(sorted(sites)))
    rows = connection.execute(statement.order_by(subject_table.c.subject_id))
    return [_without_arm(dict(row._mapping), unblinded) for row in rows]


def kits(
    connection: Connection,
    study_id: str,
    *,
    unblinded: bool,
    location: str | None = None,
    subject_id: str | None = None,
) -> list[dict[str, Any]]:
    statement = select(kit_table).where(kit_table.c.study_id == study_id)
    if location is not None:
        statement = statement.where(kit_table.c.location == location)
    if subject_id is not None:
        statement = statement.where(kit_table.c.subject_id == subject_id)
    rows = connection.execute(statement.order_by(kit_table.c.kit))
    return [_without_arm(dict(row._mapping), unblinded) for row in rows]


def shipments(connection: Connection, study_id: str, site_id: str | None = None) -> list[dict[str, Any]]:
    statement = select(shipment_table).where(shipment_table.c.study_id == study_id)
    if site_id is not None:
        statement = statement.where(shipment_table.c.site_id == site_id)
    return [dict(row._mapping) for row in connection.execute(statement.order_by(shipment_table.c.shipment_id))]


def unblindings(connection: Connection, study_id: str, sites: frozenset[str] | None = None) -> list[dict[str, Any]]:
    statement = select(unblinding_table).where(unblinding_table.c.study_id == study_id)
    if sites is not None:
        statement = statement.where(unblinding_table.c.site_id.in_(sorted(sites)))
    return [dict(row._mapping) for row in connection.execute(statement.order_by(unblinding_table.c.seq))]
