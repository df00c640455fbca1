"""A ClinicalDataSource built in memory for the demo study (HTN-201): what capture will provide for real."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trialstack.standards.clinical import (
    AuditEntry,
    FormRecord,
    ItemRecord,
    QueryMessage,
    QueryRecord,
    SignatureDefinition,
    SignatureRecord,
    SubjectRecord,
    UserRecord,
    VisitRecord,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _vitals(subject: int) -> FormRecord:
    corrected = AuditEntry("u.coord", "0101", T0 + timedelta(hours=1), "190", "165", "transcription error")
    query = QueryRecord(
        f"Q-{subject}",
        "answered",
        (
            QueryMessage("system:rules", T0, "Systolic blood pressure above 180 mmHg: please verify.", from_site=False),
            QueryMessage("u.coord", T0 + timedelta(hours=1), "Transcription error, corrected to 165.", from_site=True),
        ),
    )
    return FormRecord(
        "VS",
        (
            ItemRecord("VSDAT", "2026-01-05", (AuditEntry("u.coord", "0101", T0, None, "2026-01-05"),)),
            ItemRecord("SYSBP", "165", (AuditEntry("u.coord", "0101", T0, None, "190"), corrected), (query,)),
            ItemRecord("WEIGHT", "80.5"),
            ItemRecord("HEIGHT", None),
        ),
        signatures=(
            SignatureRecord("SD.PI", "u.pi", "0101", T0 + timedelta(minutes=30)),
            SignatureRecord("SD.PI", "u.pi", "0101", T0 + timedelta(hours=2)),
        ),
    )


def _screening(subject: int) -> VisitRecord:
    """A visit date entered, corrected with a reason, and queried for its window."""
    entered = AuditEntry("u.coord", "0101", T0, None, "2026-01-04")
    corrected = AuditEntry("u.coord", "0101", T0 + timedelta(hours=3), "2026-01-04", "2026-01-05", "wrong day typed")
    window = QueryRecord(
        f"Q-{subject}-W",
        "closed",
        (
            QueryMessage("system:rules", T0, "Screening on 2026-01-04 is outside its window.", from_site=False),
            QueryMessage("system:rules", T0 + timedelta(hours=3), "Resolved by the correction.", from_site=False),
        ),
    )
    return VisitRecord(
        "SCREENING", (_vitals(subject),), date="2026-01-05", date_audit=(entered, corrected), date_queries=(window,)
    )


def demo_subject(n: int) -> SubjectRecord:
    adverse_events = tuple(
        FormRecord("AE", (ItemRecord("AETERM", term), ItemRecord("AESTDAT", "2026-01-06")), repeat=repeat)
        for repeat, term in enumerate(("Headache", "Nausea"), start=1)
    )
    return SubjectRecord(
        f"0101-{n:03d}",
        "0101",
        visits=(_screening(n), VisitRecord("UNSCHED", (), repeat=1)),
        log_forms=adverse_events,
        signatures=(SignatureRecord("SD.PI", "u.pi", "0101", T0 + timedelta(days=1)),),
    )


@dataclass
class DemoClinicalData:
    """`count` subjects at site 0101, each with a corrected value, a query, two signatures and two AEs."""

    count: int = 2

    def users(self) -> list[UserRecord]:
        return [
            UserRecord("u.coord", "Study coordinator"),
            UserRecord("u.pi", "Investigator"),
            UserRecord("system:rules"),
        ]

    def signature_definitions(self) -> list[SignatureDefinition]:
        return [SignatureDefinition("SD.PI", "I confirm that the data in this casebook are accurate", "Investigator")]

    def subjects(self) -> Iterator[SubjectRecord]:
        for n in range(1, self.count + 1):
            yield demo_subject(n)
