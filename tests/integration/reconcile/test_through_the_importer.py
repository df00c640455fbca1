"""Through the labs importer itself (on SQLite and PostgreSQL): a central potassium sent in mEq/L is converted by
labs to the study's mmol/L, matched to the screening visit by its date, and reconciled with the EDC's local value."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.enrolling import STUDY, enrolled_subject
from tests.integration.identity.support import loaded
from tests.integration.reconcile.support import CENTRAL_LAB, discrepancies, system_queries
from trialstack.bootstrap import Platform
from trialstack.clock import FixedClock
from trialstack.labs import commands as labs_cmd
from trialstack.labs import handlers as labs
from trialstack.standards.lab_results import LabObservation, ResultStatus

__all__ = ["loaded"]


def potassium(patient: str, value: str) -> LabObservation:
    return LabObservation(
        location="results.csv line 2", patient_id=patient, accession="ACC-1", test_code="K", test_system=None,
        test_name=None, value=value, unit="mEq/L", status=ResultStatus.FINAL, version="1",
        collected_at="2026-01-05T08:30:00", sex="M", age_years=56,
    )  # fmt: skip


def test_an_imported_result_is_reconciled_with_the_local_value(loaded: Platform, clock: FixedClock) -> None:
    subject = enrolled_subject(loaded, "0101", "2026-01-05")
    clock.set(datetime(2026, 1, 8, 9, 0, tzinfo=UTC))
    with loaded.unit_of_work(CENTRAL_LAB) as uow:
        labs.receive_results(uow, STUDY, labs_cmd.ReceiveLabResults("CENTRAL", [potassium(subject, "5.3")]))
        uow.commit()
    (found,) = discrepancies(loaded)
    assert (found.kind, found.visit, found.form, found.item) == ("local_central_mismatch", "SCREENING",
                                                                 "SCREENING.LB", "K")  # fmt: skip
    assert "4.4 mmol/L" in found.detail and "5.3 mmol/L" in found.detail
    assert system_queries(loaded, subject)[found.discrepancy_id]["status"] == "open"
