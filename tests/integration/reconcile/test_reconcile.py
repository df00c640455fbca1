"""Reconciliation on SQLite and PostgreSQL: real capture, consent and lab events through units of work raise
discrepancies, the queries context opens a query on each (addressed to the right role) and closes it when a later
event makes the check hold; the sweep finds missing samples; `rebuild` replays the same read model."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine

from tests.consenting import consent_on_paper
from tests.enrolling import STUDY, enrolled_subject
from tests.integration.identity.support import loaded
from tests.integration.reconcile.support import (
    discrepancies,
    events_of,
    lab_result,
    receive,
    record_visit,
    run,
    save_lb,
    system_queries,
)
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers as capture
from trialstack.clock import FixedClock
from trialstack.ledger.projections import checksum, rebuild
from trialstack.reconcile.handlers import SYSTEM_RECONCILE, sweep_missing_samples
from trialstack.reconcile.readmodel import ReconcileReadModel

__all__ = ["loaded"]

FOUND = "ReconciliationDiscrepancyFound"
RESOLVED = "ReconciliationDiscrepancyResolved"


@pytest.fixture
def subject(loaded: Platform) -> str:
    """Enrolled at 0101: screened, consented on paper, screening and Day 1 on 2026-01-05; local K 4.4 at screening."""
    return enrolled_subject(loaded, "0101", "2026-01-05")


def test_a_mismatch_with_the_local_value_opens_a_query_on_the_local_item_and_a_correction_closes_it(
    loaded: Platform, clock: FixedClock, subject: str
) -> None:
    clock.set(datetime(2026, 1, 8, 9, 0, tzinfo=UTC))
    appended = receive(loaded, lab_result(subject, "SCREENING", "K", "5.2", "2026-01-05"))
    (found,) = events_of(appended, FOUND)
    assert found["kind"] == "local_central_mismatch"
    assert (found["form"], found["item"], found["addressed_to"]) == ("SCREENING.LB", "K", "study_coordinator")
    assert "4.4" in found["detail"] and "5.2" in found["detail"]
    (opened,) = events_of(appended, "QueryOpened")
    assert opened["check_id"] == found["discrepancy_id"] and opened["addressed_to"] == "study_coordinator"
    assert system_queries(loaded, subject)[found["discrepancy_id"]]["status"] == "open"

    save_lb(loaded, subject, "SCREENING", {"K": "5.1"}, reason="transcription error")
    (open_,) = [d for d in discrepancies(loaded, status=None) if d.discrepancy_id == found["discrepancy_id"]]
    assert discrepancies(loaded) == []
    query = system_queries(loaded, subject)[found["discrepancy_id"]]
    assert query["status"] == "closed" and "agree" in query["resolution"]
    assert open_.kind == "local_central_mismatch"


def test_a_mismatch_is_raised_when_the_local_value_arrives_second(
    loaded: Platform, clock: FixedClock, subject: str
) -> None:
    clock.set(datetime(2026, 2, 3, 9, 0, tzinfo=UTC))
    record_visit(loaded, subject, "WEEK4", "2026-02-02")
    assert events_of(receive(loaded, lab_result(subject, "WEEK4", "K", "4.4", "2026-02-02")), FOUND) == []
    save_lb(loaded, subject, "WEEK4", {"LBPERF": "Y", "LBDAT": "2026-02-02", "K": "5.5"})
    (raised,) = discrepancies(loaded)
    assert (raised.kind, raised.form, raised.item) == ("local_central_mismatch", "WEEK4.LB", "K")
    assert system_queries(loaded, subject)[raised.discrepancy_id]["form"] == "WEEK4.LB"
    receive(loaded, lab_result(subject, "WEEK4", "SODIUM", "140", "2026-02-02"))
    assert [d.discrepancy_id for d in discrepancies(loaded)] == [raised.discrepancy_id]  # never raised twice


def test_a_sample_out_of_window_opens_a_query_on_the_collection_date_and_a_corrected_visit_date_closes_it(
    loaded: Platform, clock: FixedClock, subject: str
) -> None:
    clock.set(datetime(2026, 2, 22, 9, 0, tzinfo=UTC))
    record_visit(loaded, subject, "WEEK4", "2026-02-02")
    appended = receive(loaded, lab_result(subject, "WEEK4", "HGB", "14.1", "2026-02-20"))
    (found,) = events_of(appended, FOUND)
    assert (found["kind"], found["form"], found["item"]) == ("sample_out_of_window", "WEEK4.LB", "LBDAT")
    assert "2026-02-20" in found["detail"] and "2026-01-30 to 2026-02-05" in found["detail"]
    assert system_queries(loaded, subject)[found["discrepancy_id"]]["status"] == "open"

    record_visit(loaded, subject, "WEEK4", "2026-02-21", reason="the visit date was mistyped")
    assert discrepancies(loaded) == []
    assert system_queries(loaded, subject)[found["discrepancy_id"]]["status"] == "closed"


def test_a_sample_collected_after_withdrawal_goes_to_the_data_manager(
    loaded: Platform, clock: FixedClock, subject: str
) -> None:
    clock.set(datetime(2026, 2, 1, 9, 0, tzinfo=UTC))
    run(loaded, capture.withdraw_subject, cmd.WithdrawSubject(subject, "2026-02-01", "moved away"))
    clock.set(datetime(2026, 2, 4, 9, 0, tzinfo=UTC))
    appended = receive(
        loaded,
        lab_result(subject, "SCREENING", "HGB", "14.0", "2026-01-05"),
        lab_result(subject, "WEEK4", "HGB", "13.9", "2026-02-02"),
    )
    (found,) = events_of(appended, FOUND)
    assert (found["kind"], found["addressed_to"], found["visit"]) == ("subject_not_eligible_for_samples",
                                                                      "data_manager", "WEEK4")  # fmt: skip
    assert "withdrew from the study on 2026-02-01" in found["detail"]
    (opened,) = events_of(appended, "QueryOpened")
    assert opened["addressed_to"] == "data_manager"


def test_a_sample_before_consent_is_raised_and_a_paper_consent_dated_before_it_resolves_it(
    loaded: Platform, clock: FixedClock
) -> None:
    outcome = run(loaded, capture.screen_subject, cmd.ScreenSubject("0102", "2026-01-05"))
    subject = str(outcome.subject_id)
    appended = receive(loaded, lab_result(subject, "SCREENING", "HGB", "14.0", "2026-01-05", site_id="0102"))
    (found,) = events_of(appended, FOUND)
    assert found["kind"] == "subject_not_eligible_for_samples" and "no signed consent to ICF" in found["detail"]
    assert found["site_id"] == "0102"

    consent_on_paper(loaded, STUDY, subject, "2026-01-05")
    assert discrepancies(loaded) == []
    assert system_queries(loaded, subject)[found["discrepancy_id"]]["status"] == "closed"


def test_the_sweep_raises_missing_samples_once_and_their_arrival_resolves_them(
    loaded: Platform, clock: FixedClock, subject: str
) -> None:
    clock.set(datetime(2026, 2, 3, 9, 0, tzinfo=UTC))
    record_visit(loaded, subject, "WEEK4", "2026-02-02")
    receive(loaded, lab_result(subject, "SCREENING", "HGB", "14.0", "2026-01-05"))

    def sweep(today: date) -> list[tuple[str, str | None]]:
        with loaded.unit_of_work(SYSTEM_RECONCILE) as uow:
            events = sweep_missing_samples(uow, STUDY, today)
            uow.commit()
        return [(e.event_type, e.payload["visit"]) for e in events]

    assert sweep(date(2026, 2, 9)) == []
    assert sweep(date(2026, 2, 10)) == [(FOUND, "WEEK4")]
    assert sweep(date(2026, 2, 11)) == []
    (missing,) = discrepancies(loaded)
    assert (missing.kind, missing.form, missing.item, missing.test) == ("sample_missing", "WEEK4.LB", "LBDAT", None)
    assert system_queries(loaded, subject)[missing.discrepancy_id]["status"] == "open"

    clock.set(datetime(2026, 2, 12, 9, 0, tzinfo=UTC))
    resolved = receive(loaded, lab_result(subject, "WEEK4", "HGB", "14.2", "2026-02-02"))
    assert [e["discrepancy_id"] for e in events_of(resolved, RESOLVED)] == [missing.discrepancy_id]
    assert system_queries(loaded, subject)[missing.discrepancy_id]["status"] == "closed"
    assert sweep(date(2026, 2, 13)) == []


def _reconcile_checksum(engine: Engine) -> str:
    with engine.connect() as connection:
        return checksum(connection, list(ReconcileReadModel.tables))


def test_rebuild_replays_the_same_reconcile_read_model(loaded: Platform, clock: FixedClock, subject: str) -> None:
    clock.set(datetime(2026, 2, 22, 9, 0, tzinfo=UTC))
    record_visit(loaded, subject, "WEEK4", "2026-02-02")
    receive(loaded, lab_result(subject, "WEEK4", "K", "6.0", "2026-02-20"))
    save_lb(loaded, subject, "WEEK4", {"LBPERF": "Y", "LBDAT": "2026-02-02", "K": "4.0"})
    before = _reconcile_checksum(loaded.engine)
    assert len(discrepancies(loaded)) == 2
    rebuild(loaded.engine, loaded.wiring)
    assert _reconcile_checksum(loaded.engine) == before
