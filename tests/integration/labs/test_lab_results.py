"""Lab results through the handlers on SQLite and PostgreSQL: matched, repeated, corrected, triaged, graded and
alerted; a refused row writes nothing; the read model rebuilds to the same checksum."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import REPO_ROOT
from tests.enrolling import STUDY, enrolled_subject
from trialstack.bootstrap import Platform
from trialstack.errors import DomainRuleViolation, InvalidInput
from trialstack.labs import commands as cmd
from trialstack.labs import handlers as labs
from trialstack.labs import readmodel as rm
from trialstack.labs.handlers import LabImportRefused, LabImportReport
from trialstack.ledger.envelope import Actor
from trialstack.ledger.projections import projections_checksum, rebuild
from trialstack.ledger.registry import decode
from trialstack.ledger.schema import ledger_event
from trialstack.ledger.store import iter_study
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.lab_results import LabObservation, LabParseError, ResultStatus
from trialstack.standards.loader import load_study_file

FEED = Actor("feed:central-lab", "system")
DATA_MANAGER = Actor("user:dana", "data_manager")
INVESTIGATOR = Actor("user:ivan", "investigator")


@pytest.fixture
def study(platform: Platform) -> Platform:
    definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", "study.yaml"))
        uow.commit()
    return platform


def result(
    patient: str, code: str, value: str, unit: str | None, *, accession: str = "A1", version: str = "1",
    status: ResultStatus = ResultStatus.FINAL, collected: str = "2026-01-05T08:30:00", line: int = 2,
    sex: str | None = "M",
) -> LabObservation:  # fmt: skip
    return LabObservation(
        location=f"results.csv line {line}", patient_id=patient, accession=accession, test_code=code,
        test_system=None, test_name=None, value=value, unit=unit, status=status, version=version,
        collected_at=collected, sex=sex, age_years=56,
    )  # fmt: skip


def receive(platform: Platform, *rows: LabObservation | LabParseError, accept_valid: bool = False) -> LabImportReport:
    with platform.unit_of_work(FEED) as uow:
        report = labs.receive_results(uow, STUDY, cmd.ReceiveLabResults("CENTRAL", rows, accept_valid))
        uow.commit()
    return report


def run(platform: Platform, actor: Actor, handler: Callable[..., Any], command: Any) -> Any:
    with platform.unit_of_work(actor) as uow:
        outcome = handler(uow, STUDY, command)
        uow.commit()
    return outcome


def count_events(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ledger_event)).scalar_one())


def test_a_result_is_matched_converted_flagged_and_a_repeat_adds_nothing(study: Platform) -> None:
    subject = enrolled_subject(study)
    creatinine = result(subject, "CREA", "97", "umol/L")
    report = receive(study, creatinine, result(subject, "2823-3", "5.4", "mmol/L", line=3))
    assert (report.received, report.repeated, report.unmatched, report.refused) == (2, 0, 0, 0)
    with study.engine.connect() as connection:
        rows = {row["test"]: row for row in rm.results_of_subject(connection, STUDY, subject)}
    assert rows["CREAT"]["value"] == "1.10" and rows["CREAT"]["unit"] == "mg/dL"
    assert rows["CREAT"]["original_value"] == "97" and rows["CREAT"]["original_unit"] == "umol/L"
    assert rows["CREAT"]["visit"] == "SCREENING" and rows["CREAT"]["flag"] is None
    assert rows["K"]["flag"] == "H" and (rows["K"]["low"], rows["K"]["high"]) == ("3.5", "5.1")
    before = count_events(study)
    again = receive(study, creatinine, result(subject, "2823-3", "5.4", "mmol/L", line=3))
    assert (again.received, again.repeated) == (0, 2)
    assert count_events(study) == before


def test_a_corrected_result_appends_a_change_with_the_laboratorys_reason(study: Platform) -> None:
    subject = enrolled_subject(study)
    receive(study, result(subject, "ALT", "30", "U/L"))
    corrected = result(subject, "ALT", "300", "U/L", version="2", status=ResultStatus.CORRECTED)
    report = receive(study, corrected)
    assert report.corrected == 1
    with study.engine.connect() as connection:
        (row,) = rm.results_of_subject(connection, STUDY, subject)
        last = connection.execute(
            select(ledger_event.c.reason, ledger_event.c.event_type).where(
                ledger_event.c.event_type == "LabResultCorrected"
            )
        ).one()
    assert (row["value"], row["corrections"], row["version"]) == ("300", 1, "2")
    assert last.reason == "corrected by the laboratory"
    assert row["grade"] == 3


def test_unknown_patients_and_dates_outside_every_window_wait_in_triage(study: Platform) -> None:
    subject = enrolled_subject(study)
    report = receive(
        study,
        result("LAB-99812", "K", "4.0", "mmol/L"),
        result(subject, "K", "4.1", "mmol/L", accession="A2", collected="2026-02-20T08:00:00"),
    )
    assert (report.unmatched, report.received) == (2, 0)
    with study.engine.connect() as connection:
        items = rm.triage_items(connection, STUDY)
    reasons = sorted(item["reason"] for item in items)
    assert "no subject matches the laboratory's patient id 'LAB-99812'" in reasons
    assert any("outside every visit's window" in reason for reason in reasons)
    assert count_events(study) > 0
    again = receive(study, result("LAB-99812", "K", "4.0", "mmol/L"))
    assert (again.repeated, again.unmatched) == (1, 0)


def test_assigning_a_triaged_result_with_remember_maps_the_lab_id(study: Platform) -> None:
    subject = enrolled_subject(study)
    receive(study, result("LAB-7", "K", "4.0", "mmol/L"))
    with study.engine.connect() as connection:
        (item,) = rm.triage_items(connection, STUDY)
    assign = cmd.AssignLabResult(item["triage_id"], subject, "DAY1", True, "Lab id confirmed with the site")
    run(study, DATA_MANAGER, labs.assign_triaged, assign)
    with pytest.raises(DomainRuleViolation):
        run(study, DATA_MANAGER, labs.assign_triaged, assign)
    report = receive(study, result("LAB-7", "NA", "140", "mmol/L", accession="A9"))
    assert report.received == 1
    with study.engine.connect() as connection:
        tests = sorted(row["test"] for row in rm.results_of_subject(connection, STUDY, subject))
        assert rm.triage_items(connection, STUDY) == []
    assert tests == ["K", "SODIUM"]


def test_rejecting_needs_a_reason(study: Platform) -> None:
    receive(study, result("NOBODY", "K", "4.0", "mmol/L"))
    with study.engine.connect() as connection:
        (item,) = rm.triage_items(connection, STUDY)
    with pytest.raises(InvalidInput):
        run(study, DATA_MANAGER, labs.reject_triaged, cmd.RejectLabResult(item["triage_id"], " "))
    run(study, DATA_MANAGER, labs.reject_triaged, cmd.RejectLabResult(item["triage_id"], "Not a study participant"))
    with study.engine.connect() as connection:
        (rejected,) = rm.triage_items(connection, STUDY, status="rejected")
    assert rejected["resolution"] == "Not a study participant"


def test_a_grade_3_value_alerts_the_investigator_who_confirms_or_dismisses(study: Platform) -> None:
    subject = enrolled_subject(study)
    report = receive(study, result(subject, "K", "6.5", "mmol/L"), result(subject, "PLT", "40", "10*9/L", line=3))
    assert report.alerts == 2 and report.graded == 2
    with study.engine.connect() as connection:
        raised = {row["test"]: row for row in rm.alerts(connection, STUDY, status="raised")}
    assert raised["K"]["term"] == "Hyperkalemia" and raised["K"]["grade"] == 3
    assert raised["PLAT"]["grade"] == 3
    run(study, INVESTIGATOR, labs.confirm_alert, cmd.ConfirmLabAlert(raised["K"]["alert_id"]))
    run(study, INVESTIGATOR, labs.dismiss_alert, cmd.DismissLabAlert(raised["PLAT"]["alert_id"], "Clumped sample"))
    with pytest.raises(DomainRuleViolation):
        run(study, INVESTIGATOR, labs.dismiss_alert, cmd.DismissLabAlert(raised["K"]["alert_id"], "changed mind"))
    with study.engine.connect() as connection:
        statuses = {row["test"]: row["status"] for row in rm.alerts(connection, STUDY)}
        (confirmed,) = [e for e in iter_study(connection, STUDY) if e.event_type == "LabAlertConfirmed"]
    assert statuses == {"K": "confirmed", "PLAT": "dismissed"}
    assert decode(confirmed).model_dump()["onset"] == "2026-01-05"


def test_refused_rows_write_nothing_unless_the_valid_ones_are_accepted(study: Platform) -> None:
    subject = enrolled_subject(study)
    before = count_events(study)
    rows = (
        result(subject, "K", "4.0", "mmol/L"),
        result(subject, "K", "high", "mmol/L", accession="A2", line=3),
        result(subject, "NA", "140", "furlongs", accession="A3", line=4),
        result(subject, "XYZ", "1", "mg/dL", accession="A4", line=5),
        LabParseError("results.csv line 6", "collected_at", "'32/13/2026' is not a date"),
    )
    with pytest.raises(LabImportRefused) as refused:
        receive(study, *rows)
    assert count_events(study) == before
    located = [(e.location, e.field) for e in refused.value.report.errors]
    assert located == [
        ("results.csv line 3", "value"),
        ("results.csv line 4", "unit"),
        ("results.csv line 5", "test code"),
        ("results.csv line 6", "collected_at"),
    ]
    report = receive(study, *rows, accept_valid=True)
    assert (report.received, report.refused) == (1, 4)


def test_the_read_model_rebuilds_to_the_same_checksum(study: Platform) -> None:
    subject = enrolled_subject(study)
    receive(study, result(subject, "K", "6.5", "mmol/L"), result("LAB-1", "K", "4", "mmol/L", accession="B1"))
    receive(study, result(subject, "K", "6.1", "mmol/L", version="2", status=ResultStatus.CORRECTED))
    before = projections_checksum(study.engine, study.wiring)
    rebuild(study.engine, study.wiring)
    assert projections_checksum(study.engine, study.wiring) == before


def test_a_row_repeated_in_a_later_batch_of_the_same_file_is_a_repeat(
    study: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(labs, "BATCH", 1)  # five batches: the fourth flush refreshes PostgreSQL's statistics
    subject = enrolled_subject(study)
    rows = [result(subject, code, value, unit, line=n) for n, (code, value, unit) in enumerate(
        [("K", "4.1", "mmol/L"), ("NA", "140", "mmol/L"), ("ALT", "20", "U/L"), ("AST", "22", "U/L")], start=2
    )]  # fmt: skip
    report = receive(study, *rows, rows[0])
    assert (report.rows, report.received, report.repeated) == (5, 4, 1)
    with study.engine.connect() as connection:
        assert len(rm.results_of_subject(connection, STUDY, subject)) == 4
