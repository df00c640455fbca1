"""Central lab results appended the way the labs importer appends them (one `lab_results` stream per subject, no
expected version, `(source, external_id)` per result), built directly with the labs events model; and the capture
and consent steps of the reconcile tests, through the real handlers."""

from __future__ import annotations

from typing import Any

from tests.enrolling import COORDINATOR, STUDY
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers as capture
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.labs.events import LabResultReceived
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.registry import encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.queries.readmodel import list_queries
from trialstack.reconcile.checks import Discrepancy
from trialstack.reconcile.readmodel import list_discrepancies

CENTRAL_LAB = Actor("feed:central-lab", "system")
UNITS = {"K": "mmol/L", "SODIUM": "mmol/L", "CREAT": "mg/dL", "ALT": "U/L", "GLUC": "mg/dL", "HGB": "g/dL"}


def lab_result(
    subject_id: str,
    visit: str | None,
    test: str,
    value: str,
    collected_on: str | None,
    result_id: str | None = None,
    site_id: str = "0101",
) -> LabResultReceived:
    rid = result_id or f"CENTRAL-{subject_id}-{visit}-{test}"
    collected_at = f"{collected_on}T08:30:00Z" if collected_on else None
    return LabResultReceived(
        result_id=rid, subject_id=subject_id, site_id=site_id, visit=visit, source="CENTRAL",
        accession=f"ACC-{rid}", test=test, lab_code=test, collected_at=collected_at,
        reported_at=None, value=value, unit=UNITS[test], numeric=True, original_value=value,
        original_unit=UNITS[test], low=None, high=None, flag=None, lab_flags=None, lab_range=None, status="final",
        version="1", sex="M", age_years=55, location="test", study_version="test", matched_by="screening number",
    )  # fmt: skip


def append_results(uow: UnitOfWork, results: list[LabResultReceived]) -> list[RecordedEvent]:
    by_subject: dict[str, list[LabResultReceived]] = {}
    for result in results:
        by_subject.setdefault(result.subject_id, []).append(result)
    appended: list[RecordedEvent] = []
    for subject_id, received in by_subject.items():
        events = [encode(r, source=f"{STUDY}/CENTRAL", external_id=r.accession) for r in received]
        appended += uow.append(STUDY, "lab_results", f"{STUDY}/{subject_id}", events, expected_version=None)
    return appended


def receive(platform: Platform, *results: LabResultReceived) -> list[RecordedEvent]:
    """One import: the results and every reaction to them, committed."""
    with platform.unit_of_work(CENTRAL_LAB) as uow:
        append_results(uow, list(results))
        return uow.commit()


def run(platform: Platform, handler: Any, *args: Any) -> Any:
    with platform.unit_of_work(COORDINATOR) as uow:
        outcome = handler(uow, STUDY, *args)
        uow.commit()
    return outcome


def save_lb(platform: Platform, subject: str, visit: str, values: dict[str, str], reason: str | None = None) -> None:
    items = {item: cmd.ItemInput(value) for item, value in values.items()}
    run(platform, capture.save_form, cmd.SaveForm(subject, FormKey("LB", VisitKey(visit)), items, reason))


def record_visit(platform: Platform, subject: str, visit: str, on: str, reason: str | None = None) -> None:
    run(platform, capture.record_visit_date, cmd.RecordVisitDate(subject, VisitKey(visit), on, reason))


def discrepancies(platform: Platform, status: str | None = "open") -> list[Discrepancy]:
    with platform.engine.connect() as connection:
        return list_discrepancies(connection, STUDY, status=status)


def system_queries(platform: Platform, subject: str) -> dict[str, dict[str, Any]]:
    """The subject's queries raised by reconciliation, by check id (the discrepancy id)."""
    with platform.engine.connect() as connection:
        rows = list_queries(connection, STUDY, subject_id=subject)
    return {str(row["check_id"]): row for row in rows if str(row["check_id"]).startswith("RC-")}


def events_of(events: list[RecordedEvent], event_type: str) -> list[dict[str, Any]]:
    return [e.payload for e in events if e.event_type == event_type]
