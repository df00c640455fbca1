"""Read model of consent: each subject as consent sees it, invitations by code, and where each document stands.

`rm_consent_subject` follows capture's subject events (site, status, last visit) so the re-consent policy and the
site's tracker know who is on study without reading capture's tables; `rm_consent_document` is the tracker's row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Column, Connection, MetaData, String, Table, select

from trialstack.capture.events import SUBJECT_STATUS_AFTER
from trialstack.consent import events as ev
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.rowfold import FoldingProjection, Key, RowStore

readmodel_metadata = MetaData()

subject_table = Table(
    "rm_consent_subject",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("last_visit", String(64)),
    Column("username", String(64)),
    Column("invited_at", String(27)),
    Column("invitation_expires_at", String(27)),
    Column("activated_at", String(27)),
)

invitation_table = Table(
    "rm_consent_invitation",
    readmodel_metadata,
    Column("code_sha256", String(64), primary_key=True),
    Column("study_id", String(64), nullable=False),
    Column("subject_id", String(64), nullable=False),
)

document_table = Table(
    "rm_consent_document",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("document_id", String(64), primary_key=True),
    Column("signed_version", String(40)),
    Column("signed_on", String(10)),
    Column("method", String(12)),
    Column("signed_by", String(40)),
    Column("countersigned_by", String(64)),
    Column("awaiting_countersignature", Boolean, nullable=False),
    Column("copy_sha256", String(64)),
    Column("reconsent_version", String(40)),
    Column("reconsent_on", String(10)),
    Column("withdrawn_on", String(10)),
    Column("continues", String(200)),
    Column("parts", String(1000)),
)

ON_STUDY = ("screening", "enrolled")
_CONSENT_TYPES = frozenset(cls.__name__ for cls in ev.CONSENT_EVENTS)


def _parts(choices: list[dict[str, Any]]) -> str:
    return ",".join(f"{c['part']}={'yes' if c['agreed'] else 'no'}" for c in choices)


class ConsentReadModel(FoldingProjection):
    name = "consent.tracker"
    tables = (subject_table, invitation_table, document_table)
    event_types = frozenset({*SUBJECT_STATUS_AFTER, "VisitDateRecorded", *_CONSENT_TYPES})

    def touches(self, event: RecordedEvent) -> Iterable[tuple[Table, Key]]:
        payload = event.payload
        yield subject_table, (event.study_id, payload["subject_id"])
        if "document_id" in payload:
            yield document_table, (event.study_id, payload["subject_id"], payload["document_id"])
        if "code_sha256" in payload:
            yield invitation_table, (payload["code_sha256"],)

    def fold(self, event: RecordedEvent, rows: RowStore) -> None:
        payload, kind = event.payload, event.event_type
        key = (event.study_id, payload["subject_id"])
        subject = rows.get(subject_table, key)
        if kind == "SubjectScreened":
            subject = {
                "study_id": event.study_id, "subject_id": payload["subject_id"], "site_id": payload["site_id"],
                "status": "screening", "last_visit": None, "username": None, "invited_at": None,
                "invitation_expires_at": None, "activated_at": None,
            }  # fmt: skip
        elif subject is None:
            return
        elif kind in SUBJECT_STATUS_AFTER:
            subject["status"] = SUBJECT_STATUS_AFTER[kind]
        elif kind == "VisitDateRecorded":
            subject["last_visit"] = payload["visit"]
        elif kind == "ParticipantInvited":
            subject.update(invited_at=event.recorded_at, invitation_expires_at=payload["expires_at"])
            rows.put(
                invitation_table,
                {"code_sha256": payload["code_sha256"], **dict(zip(("study_id", "subject_id"), key, strict=True))},
            )
        elif kind == "ParticipantActivated":
            subject.update(username=payload["username"], activated_at=event.recorded_at)
        else:
            self._document(event, rows)
        rows.put(subject_table, subject)

    def _document(self, event: RecordedEvent, rows: RowStore) -> None:
        payload, kind = event.payload, event.event_type
        key = (event.study_id, payload["subject_id"], payload["document_id"])
        row = rows.get(document_table, key) or {
            "study_id": key[0], "subject_id": key[1], "document_id": key[2], "signed_version": None,
            "signed_on": None, "method": None, "signed_by": None, "countersigned_by": None,
            "awaiting_countersignature": False, "copy_sha256": None, "reconsent_version": None,
            "reconsent_on": None, "withdrawn_on": None, "continues": None, "parts": None,
        }  # fmt: skip
        if kind in ("ConsentSigned", "ConsentRecordedOnPaper"):
            electronic = kind == "ConsentSigned"
            done = row["reconsent_version"] == payload["version"]
            row.update(
                signed_version=payload["version"],
                signed_on=payload["signed_at"][:10] if electronic else payload["signed_on"],
                method="electronic" if electronic else "paper",
                signed_by=payload["signed_by"] if electronic else payload["obtained_by"],
                countersigned_by=None, awaiting_countersignature=electronic,
                copy_sha256=payload["copy_sha256"] if electronic else None,
                reconsent_version=None if done else row["reconsent_version"],
                reconsent_on=None if done else row["reconsent_on"],
                withdrawn_on=None, continues=None, parts=_parts(payload["choices"]),
            )  # fmt: skip
        elif kind == "ConsentCountersigned":
            row.update(countersigned_by=payload["username"], awaiting_countersignature=False,
                       copy_sha256=payload["copy_sha256"])  # fmt: skip
        elif kind == "ReconsentRequired":
            row.update(reconsent_version=payload["version"], reconsent_on=payload["required_on"])
        elif kind == "ConsentWithdrawn" and payload.get("part"):
            parts = dict(p.split("=") for p in (row["parts"] or "").split(",") if p)
            parts[payload["part"]] = "withdrawn"
            row["parts"] = ",".join(f"{k}={v}" for k, v in parts.items())
        elif kind == "ConsentWithdrawn":
            row.update(withdrawn_on=payload["withdrawn_on"], continues=",".join(payload["continues"]),
                       awaiting_countersignature=False)  # fmt: skip
        rows.put(document_table, row)


@dataclass(frozen=True)
class ConsentSubjectRow:
    study_id: str
    subject_id: str
    site_id: str
    status: str
    last_visit: str | None
    username: str | None
    invited_at: str | None
    invitation_expires_at: str | None
    activated_at: str | None


def invitation_for_code(connection: Connection, code_sha256: str) -> tuple[str, str] | None:
    """(study, subject) of the invitation with this code hash."""
    row = connection.execute(
        select(invitation_table.c.study_id, invitation_table.c.subject_id).where(
            invitation_table.c.code_sha256 == code_sha256
        )
    ).first()
    return (str(row[0]), str(row[1])) if row is not None else None


def consent_subject(connection: Connection, study_id: str, subject_id: str) -> ConsentSubjectRow | None:
    row = connection.execute(
        select(subject_table).where(subject_table.c.study_id == study_id, subject_table.c.subject_id == subject_id)
    ).first()
    return ConsentSubjectRow(*row) if row is not None else None


def subjects_on_study(connection: Connection, study_id: str) -> list[ConsentSubjectRow]:
    statement = (
        select(subject_table)
        .where(subject_table.c.study_id == study_id, subject_table.c.status.in_(ON_STUDY))
        .order_by(subject_table.c.subject_id)
    )
    return [ConsentSubjectRow(*row) for row in connection.execute(statement)]


def tracker_rows(
    connection: Connection, study_id: str, sites: frozenset[str] | None, subject_id: str | None = None
) -> list[dict[str, Any]]:
    """Every subject (at the given sites; None: all) with each document's standing, for the consent tracker."""
    joined = subject_table.outerjoin(
        document_table,
        (document_table.c.study_id == subject_table.c.study_id)
        & (document_table.c.subject_id == subject_table.c.subject_id),
    )
    statement = select(subject_table, *[c for c in document_table.c if c.name not in ("study_id", "subject_id")])
    statement = statement.select_from(joined).where(subject_table.c.study_id == study_id)
    if sites is not None:
        statement = statement.where(subject_table.c.site_id.in_(sorted(sites)))
    if subject_id is not None:
        statement = statement.where(subject_table.c.subject_id == subject_id)
    statement = statement.order_by(subject_table.c.subject_id, document_table.c.document_id)
    return [dict(row._mapping) for row in connection.execute(statement)]
