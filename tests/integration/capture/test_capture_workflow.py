"""Capture end to end on the demo study: screening, visits, forms, live edit checks, system queries, SDV, lock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.integration.capture.conftest import COORDINATOR, DATA_MANAGER, MONITOR, STUDY, Site, event_types
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers, readmodel
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.clock import FixedClock
from trialstack.errors import DomainRuleViolation, InvalidInput
from trialstack.ledger import ConcurrencyConflict, store
from trialstack.ledger.schema import ledger_event
from trialstack.ledger.verify import verify
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers as queries
from trialstack.queries.readmodel import list_queries

SCREENING_VS = FormKey("VS", VisitKey("SCREENING"))


def vitals(sbp: str = "165", **overrides: str) -> dict[str, cmd.ItemInput]:
    values = {"VSDAT": "2026-01-05", "SYSBP": sbp, "DIABP": "95", "PULSE": "72", "WEIGHT": "80.5", "HEIGHT": "175"}
    values.update(overrides)
    return {item: cmd.ItemInput(value=value) for item, value in values.items()}


def screened(platform: Platform) -> tuple[Site, str]:
    site = Site(platform, COORDINATOR)
    subject = site.screen()
    site.outcome(handlers.record_visit_date, STUDY, cmd.RecordVisitDate(subject, VisitKey("SCREENING"), "2026-01-05"))
    ic = {"ICDAT": cmd.ItemInput("2026-01-05"), "ICVERS": cmd.ItemInput("1.0")}
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, FormKey("IC", VisitKey("SCREENING")), ic))
    return site, subject


def ledger_count(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ledger_event)).scalar_one())


def test_screening_numbers_subjects_per_site(demo: Platform) -> None:
    site = Site(demo, COORDINATOR)
    first = site.outcome(handlers.screen_subject, STUDY, cmd.ScreenSubject("0101", "2026-01-05"))
    second = site.outcome(handlers.screen_subject, STUDY, cmd.ScreenSubject("0101", "2026-01-05"))
    other = site.outcome(handlers.screen_subject, STUDY, cmd.ScreenSubject("0102", "2026-01-05"))
    assert [first.subject_id, second.subject_id, other.subject_id] == ["0101-001", "0101-002", "0102-001"]
    with pytest.raises(InvalidInput, match="site '9999' is not a site"):
        site.outcome(handlers.screen_subject, STUDY, cmd.ScreenSubject("9999", "2026-01-05"))


def test_a_failing_check_opens_a_system_query_that_a_correction_closes(demo: Platform) -> None:
    site, subject = screened(demo)
    outcome = site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, vitals(sbp="190")))
    results = {r.check_id: r.result for r in outcome.checks}
    assert results["VS-SBP-ELIG"] is False
    assert results["VS-DBP-LT-SBP"] is True and results["VS-SYSBP-RANGE"] is True
    produced = site.committed
    assert "EditCheckFailed" in event_types(produced) and "QueryOpened" in event_types(produced)
    opened = next(e for e in produced if e.event_type == "QueryOpened")
    failed = next(e for e in produced if e.event_type == "EditCheckFailed")
    assert opened.actor_id == "system:rules" and opened.causation_id == failed.event_ref
    assert opened.payload["check_id"] == "VS-SBP-ELIG" and opened.payload["item"] == "SYSBP"
    derived = next(e for e in produced if e.event_type == "ItemValueDerived")
    assert derived.payload == {**derived.payload, "item": "BMI", "value": "26.3"}

    with pytest.raises(InvalidInput, match="reason for change"):
        site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, {"SYSBP": cmd.ItemInput("165")}))
    correction = cmd.SaveForm(subject, SCREENING_VS, {"SYSBP": cmd.ItemInput("165")}, reason="transcription error")
    site.outcome(handlers.save_form, STUDY, correction)
    types = event_types(site.committed)
    assert types[:1] == ["ItemValueChanged"] and "EditCheckResolved" in types and "QueryClosed" in types
    changed = site.committed[0]
    assert changed.reason == "transcription error" and changed.payload["previous_value"] == "190"
    closed = next(e for e in site.committed if e.event_type == "QueryClosed")
    assert closed.payload["automatic"] is True
    with demo.engine.connect() as connection:
        (query,) = list_queries(connection, STUDY, subject_id=subject)
        assert verify(connection).ok
    assert query["status"] == "closed" and query["check_id"] == "VS-SBP-ELIG"


@pytest.mark.parametrize(
    ("items", "field", "message"),
    [
        ({"SYSBP": cmd.ItemInput("one-sixty")}, "items.SYSBP", "is not a whole number"),
        ({"VSDAT": cmd.ItemInput("2026-02-30")}, "items.VSDAT", "is not a real date"),
        ({"XYZ": cmd.ItemInput("1")}, "items.XYZ", "not on form VS"),
        ({"SYSBP": cmd.ItemInput("165", unit="kPa")}, "items.SYSBP", "unit 'kPa'"),
        ({"BMI": cmd.ItemInput("25")}, "items.BMI", "derived by the system"),
        ({"WEIGHT": cmd.ItemInput("80.55")}, "items.WEIGHT", "decimal places"),
    ],
)
def test_bad_values_are_refused_naming_the_field_and_nothing_is_written(
    demo: Platform, items: dict[str, cmd.ItemInput], field: str, message: str
) -> None:
    site, subject = screened(demo)
    before = ledger_count(demo)
    with pytest.raises(InvalidInput, match=message) as caught:
        site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, {**vitals(), **items}))
    assert caught.value.field == field
    assert ledger_count(demo) == before


def test_a_blocking_check_refuses_the_save(demo: Platform) -> None:
    site, subject = screened(demo)
    before = ledger_count(demo)
    with pytest.raises(DomainRuleViolation, match=r"Temperature must be 34\.0 to 42\.0") as caught:
        site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, vitals(TEMP="45.0")))
    assert caught.value.field == "items.TEMP"
    assert ledger_count(demo) == before


def test_visits_outside_their_window_raise_a_query_once_the_anchor_is_known(demo: Platform) -> None:
    site, subject = screened(demo)
    site.outcome(handlers.record_visit_date, STUDY, cmd.RecordVisitDate(subject, VisitKey("WEEK2"), "2026-01-05"))
    assert "QueryOpened" not in event_types(site.committed)
    assert isinstance(demo.clock, FixedClock)
    demo.clock.advance(timedelta(days=60))
    site.outcome(handlers.record_visit_date, STUDY, cmd.RecordVisitDate(subject, VisitKey("DAY1"), "2026-01-20"))
    opened = [e.payload for e in site.committed if e.event_type == "QueryOpened"]
    assert [(q["check_id"], q["form"], q["item"]) for q in opened] == [("WEEK2-WINDOW", "WEEK2", "VISIT_DATE")]
    assert "study day 12 to 18" in opened[0]["text"]
    fix = cmd.RecordVisitDate(subject, VisitKey("WEEK2"), "2026-02-03", reason="wrong date entered")
    site.outcome(handlers.record_visit_date, STUDY, fix)
    assert "QueryClosed" in event_types(site.committed)


def test_data_cannot_change_on_a_frozen_form_or_a_locked_casebook_or_study(demo: Platform) -> None:
    site, subject = screened(demo)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, vitals()))
    manager = Site(demo, DATA_MANAGER)
    manager.outcome(handlers.freeze_form, STUDY, cmd.FreezeForm(subject, SCREENING_VS))
    change = cmd.SaveForm(subject, SCREENING_VS, {"PULSE": cmd.ItemInput("75")}, reason="re-measured")
    with pytest.raises(DomainRuleViolation, match="frozen"):
        site.outcome(handlers.save_form, STUDY, change)
    manager.outcome(handlers.unfreeze_form, STUDY, cmd.UnfreezeForm(subject, SCREENING_VS, "query answer"))
    site.outcome(handlers.save_form, STUDY, change)
    manager.outcome(handlers.lock_casebook, STUDY, cmd.LockCasebook(subject))
    with pytest.raises(DomainRuleViolation, match="locked"):
        site.outcome(
            handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, {"PULSE": cmd.ItemInput("76")}, reason="x")
        )
    manager.outcome(handlers.unlock_casebook, STUDY, cmd.UnlockCasebook(subject, "late data from site"))
    manager.outcome(handlers.lock_study, cmd.LockStudy(STUDY))
    with pytest.raises(DomainRuleViolation, match="study HTN-201 is locked"):
        site.outcome(
            handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, {"PULSE": cmd.ItemInput("77")}, reason="x")
        )
    with pytest.raises(InvalidInput, match="reason"):
        manager.outcome(handlers.unlock_study, cmd.UnlockStudy(STUDY, " "))
    manager.outcome(handlers.unlock_study, cmd.UnlockStudy(STUDY, "database re-opened for a late SAE"))
    site.outcome(
        handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, {"PULSE": cmd.ItemInput("77")}, reason="x")
    )


def test_sdv_covers_the_targeted_items_and_a_later_change_invalidates_it(demo: Platform) -> None:
    site, subject = screened(demo)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, vitals()))
    monitor = Site(demo, MONITOR)
    monitor.outcome(handlers.verify_source_data, STUDY, cmd.VerifySourceData(subject, SCREENING_VS))
    (verified,) = monitor.committed
    assert verified.payload["items"] == ["DIABP", "SYSBP"] and verified.payload["form_complete"] is True
    site.outcome(
        handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, {"SYSBP": cmd.ItemInput("166")}, reason="typo")
    )
    invalidated = [e.payload for e in site.committed if e.event_type == "SourceDataVerificationInvalidated"]
    assert invalidated == [{"subject_id": subject, "form": "SCREENING.VS", "items": ["SYSBP"]}]
    with demo.engine.connect() as connection:
        form = next(f for f in readmodel.subject_forms(connection, STUDY, subject) if f["form"] == "SCREENING.VS")
    assert form["sdv_complete"] is False


def test_manual_query_lifecycle(demo: Platform) -> None:
    site, subject = screened(demo)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, vitals()))
    monitor = Site(demo, MONITOR)
    (opened,) = monitor.run(
        queries.open_manual_query, STUDY, "0101", qcmd.OpenQuery(subject, "SCREENING.VS", "PULSE", "Source says 78?")
    )
    query_id = opened.payload["query_id"]
    assert query_id == f"Q-{subject}-001"
    site.run(queries.answer_query, STUDY, qcmd.AnswerQuery(query_id, "Source re-checked: 72 is right."))
    monitor.run(queries.requery_query, STUDY, qcmd.RequeryQuery(query_id, "Please attach the vitals worksheet."))
    site.run(queries.answer_query, STUDY, qcmd.AnswerQuery(query_id, "Worksheet filed in the ISF."))
    Site(demo, DATA_MANAGER).run(queries.close_query, STUDY, qcmd.CloseQuery(query_id, "Confirmed."))
    with pytest.raises(DomainRuleViolation, match="closed"):
        site.run(queries.answer_query, STUDY, qcmd.AnswerQuery(query_id, "again"))
    with demo.engine.connect() as connection:
        (row,) = list_queries(connection, STUDY, subject_id=subject)
    assert row["status"] == "closed" and row["rounds"] == 2 and row["answer"] == "Worksheet filed in the ISF."


def test_enrolment_follows_the_eligibility_criteria(demo: Platform) -> None:
    site, subject = screened(demo)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, vitals()))
    demographics = {"BRTHDAT": "1970-03-01", "SEX": "M", "RACE": "WHITE", "ETHNIC": "NOT HISPANIC OR LATINO"}
    site.outcome(
        handlers.save_form,
        STUDY,
        cmd.SaveForm(
            subject, FormKey("DM", VisitKey("SCREENING")), {k: cmd.ItemInput(v) for k, v in demographics.items()}
        ),
    )
    with pytest.raises(DomainRuleViolation, match="lack data"):
        site.outcome(handlers.enrol_subject, STUDY, cmd.EnrolSubject(subject, "2026-01-05"))
    labs = {
        "LBPERF": "Y",
        "LBDAT": "2026-01-05",
        "K": "5.6",
        "SODIUM": "140",
        "CREAT": "0.9",
        "ALT": "25",
        "GLUC": "95",
    }
    site.outcome(
        handlers.save_form,
        STUDY,
        cmd.SaveForm(subject, FormKey("LB", VisitKey("SCREENING")), {k: cmd.ItemInput(v) for k, v in labs.items()}),
    )
    site.outcome(handlers.record_visit_date, STUDY, cmd.RecordVisitDate(subject, VisitKey("DAY1"), "2026-01-05"))
    ie = {"IEINC03": "Y", "IEEXC02": "N", "IEEXC04": "N", "IEYN": "Y"}
    site.outcome(
        handlers.save_form,
        STUDY,
        cmd.SaveForm(subject, FormKey("IE", VisitKey("DAY1")), {k: cmd.ItemInput(v) for k, v in ie.items()}),
    )
    with pytest.raises(DomainRuleViolation, match="criteria EX03 are not met"):
        site.outcome(handlers.enrol_subject, STUDY, cmd.EnrolSubject(subject, "2026-01-05"))
    site.outcome(
        handlers.save_form,
        STUDY,
        cmd.SaveForm(subject, FormKey("LB", VisitKey("SCREENING")), {"K": cmd.ItemInput("4.4")}, reason="lab re-test"),
    )
    site.outcome(handlers.enrol_subject, STUDY, cmd.EnrolSubject(subject, "2026-01-05"))
    with demo.engine.connect() as connection:
        row = readmodel.get_subject(connection, STUDY, subject)
    assert row is not None and row["status"] == "enrolled"


def test_a_stale_expected_version_is_a_conflict(demo: Platform) -> None:
    site, subject = screened(demo)
    with demo.engine.connect() as connection:
        version = store.current_stream_version(connection, "subject", f"{STUDY}/{subject}")
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, SCREENING_VS, vitals()), expected_version=version)
    with pytest.raises(ConcurrencyConflict):
        site.outcome(
            handlers.save_form,
            STUDY,
            cmd.SaveForm(subject, SCREENING_VS, {"PULSE": cmd.ItemInput("80")}, reason="re-measured"),
            expected_version=version,
        )
