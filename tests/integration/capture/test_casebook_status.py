"""The casebook status read model on SQLite and PostgreSQL: its rows are what capture's views give for the folded
casebook under the StudyVersion in force, after every unit of work, after an amendment, after a rolled-back unit
of work and in a fresh process; and `rebuild` gives them back identically."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.integration.capture.conftest import COORDINATOR, MONITOR, STUDY, Site
from trialstack.bootstrap import Platform, bootstrap
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture import status_readmodel as status
from trialstack.capture.readmodel import list_subjects
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.capture.signatures import CASEBOOK_MEANING
from trialstack.ledger.cache import StreamStateCache
from trialstack.ledger.envelope import Actor
from trialstack.ledger.projections import checksum, rebuild
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version

IC = FormKey("IC", VisitKey("SCREENING"))
DM = FormKey("DM", VisitKey("SCREENING"))
VS = FormKey("VS", VisitKey("SCREENING"))
INVESTIGATOR = Actor("user:ivan", "investigator")
TABLES = (status.status_subject_table, status.status_visit_table, status.status_form_table)


def items(**values: str) -> dict[str, cmd.ItemInput]:
    return {item: cmd.ItemInput(value) for item, value in values.items()}


def vitals() -> dict[str, cmd.ItemInput]:
    return items(VSDAT="2026-01-05", SYSBP="165", DIABP="95", PULSE="72", WEIGHT="80.5", HEIGHT="175")


def stored(platform: Platform) -> list[list[dict[str, Any]]]:
    with platform.engine.connect() as connection:
        return [
            [dict(row._mapping) for row in connection.execute(select(t).order_by(*t.primary_key.columns))]
            for t in TABLES
        ]


def folded(platform: Platform) -> list[list[dict[str, Any]]]:
    """What the rows must be: capture's views over each casebook folded afresh, under the version in force."""
    subjects: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    forms: list[dict[str, Any]] = []
    with platform.engine.connect() as connection:
        rules = handlers.rules_in_force(connection, STUDY)
        for row in list_subjects(connection, STUDY):
            casebook = handlers.read_casebook(connection, StreamStateCache(), STUDY, row["subject_id"], platform.vault)
            subject, subject_visits, subject_forms = status.status_rows(rules, casebook)
            subjects.append(subject)
            visits.extend(subject_visits)
            forms.extend(subject_forms)
    return [
        subjects,
        sorted(visits, key=lambda r: (r["subject_id"], r["visit"])),
        sorted(forms, key=lambda r: (r["subject_id"], r["form"])),
    ]


def form_row(platform: Platform, subject_id: str, form: FormKey) -> dict[str, Any]:
    forms = stored(platform)[2]
    return next(r for r in forms if r["subject_id"] == subject_id and r["form"] == str(form))


def status_checksum(platform: Platform) -> str:
    with platform.engine.connect() as connection:
        return checksum(connection, list(TABLES))


def screened(site: Site, site_id: str = "0101") -> str:
    subject = site.screen(site_id)
    site.outcome(handlers.record_visit_date, STUDY, cmd.RecordVisitDate(subject, VisitKey("SCREENING"), "2026-01-05"))
    return subject


def test_rows_follow_every_unit_of_work_and_come_back_from_a_replay(demo: Platform) -> None:
    site, monitor, investigator = Site(demo, COORDINATOR), Site(demo, MONITOR), Site(demo, INVESTIGATOR)
    first = screened(site)
    second = screened(site, "0102")
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(first, IC, items(ICDAT="2026-01-05", ICVERS="1.0")))
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(first, DM, items(BRTHDAT="1960-04-02", SEX="M")))
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(first, VS, vitals()))
    monitor.outcome(handlers.verify_source_data, STUDY, cmd.VerifySourceData(first, VS))
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(second, VS, vitals()))
    meaning = cmd.SignCasebook(first, CASEBOOK_MEANING, "user:ivan", "Ivan Investigator")
    investigator.outcome(handlers.sign_casebook, STUDY, meaning)
    assert stored(demo)[0][0]["signature"] == "valid"

    change = cmd.SaveForm(first, IC, items(ICVERS="1.1"), reason="Wrong version transcribed")
    site.outcome(handlers.save_form, STUDY, change)

    rows = stored(demo)
    assert rows == folded(demo)
    subject_rows = {r["subject_id"]: r for r in rows[0]}
    assert subject_rows[first]["signature"] == "invalid" and subject_rows[second]["signature"] == "none"
    assert form_row(demo, first, IC)["work"] == status.VERIFY and form_row(demo, first, IC)["sdv_due"] == 2
    assert form_row(demo, first, DM)["work"] == status.INCOMPLETE and form_row(demo, first, DM)["missing"] == 2
    assert form_row(demo, first, VS)["sdv_complete"] and form_row(demo, first, VS)["work"] is None
    screening = next(r for r in rows[1] if r["subject_id"] == first and r["visit"] == "SCREENING")
    assert screening["summary"] == "in_progress" and screening["due_by"] is None

    before = status_checksum(demo)
    rebuild(demo.engine, demo.wiring)
    assert status_checksum(demo) == before
    assert stored(demo) == rows


def test_a_new_study_version_recomputes_subjects_it_did_not_touch(
    demo: Platform, demo_definition: StudyDefinition
) -> None:
    site = Site(demo, COORDINATOR)
    subject = screened(site)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, VS, vitals()))
    assert form_row(demo, subject, VS)["status"] == "complete"

    amended = demo_definition.model_dump(mode="json", exclude_none=True)
    amended["study"]["protocol_version"] = "1.1-status-test"
    vs = next(form for form in amended["forms"] if form["id"] == "VS")
    vs["items"].append({"id": "VSPOS", "label": "Position", "type": "text", "max_length": 20, "required": True})
    version = study_version(StudyDefinition.model_validate(amended))
    with demo.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(version, "yaml", "amended.yaml", reason="Add VSPOS"))
        uow.commit()

    assert form_row(demo, subject, VS)["status"] == "in_progress"
    assert form_row(demo, subject, VS)["missing"] == 1
    assert stored(demo) == folded(demo)
    before = status_checksum(demo)
    rebuild(demo.engine, demo.wiring)
    assert status_checksum(demo) == before


def test_an_amendment_that_changes_no_form_or_visit_folds_no_casebook(
    demo: Platform, demo_definition: StudyDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site(demo, COORDINATOR)
    subject = screened(site)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, VS, vitals()))
    rows = stored(demo)
    amended = demo_definition.model_dump(mode="json", exclude_none=True)
    amended["study"]["protocol_version"] = "1.0.1-status-test"
    version = study_version(StudyDefinition.model_validate(amended))
    fresh = bootstrap(demo.settings, clock=demo.clock)
    fresh.vault = demo.vault

    def no_fold(*args: Any) -> Any:
        raise AssertionError("a casebook was folded")

    monkeypatch.setattr(status, "_read_stream", no_fold)
    try:
        with fresh.unit_of_work(Actor("user:builder", "study_builder")) as uow:
            publish_study_version(uow, PublishStudyVersion(version, "yaml", "amended.yaml", reason="Renumbered"))
            uow.commit()
    finally:
        fresh.close()
    assert stored(demo) == rows == folded(demo)
    before = status_checksum(demo)
    monkeypatch.undo()
    rebuild(demo.engine, demo.wiring)
    assert status_checksum(demo) == before


def test_a_rolled_back_unit_of_work_leaves_nothing_behind(demo: Platform) -> None:
    site = Site(demo, COORDINATOR)
    subject = screened(site)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, IC, items(ICDAT="2026-01-05")))
    assert form_row(demo, subject, IC)["status"] == "in_progress"

    with demo.unit_of_work(COORDINATOR) as uow:
        abandoned = handlers.save_form(uow, STUDY, cmd.SaveForm(subject, IC, items(ICVERS="1.0")))
        uow.settle()
        # not committed: rolled back when the block ends, after the projection folded and cached its state
    committed = site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, DM, items(SEX="M")))
    assert [e.stream_version for e in committed.events] == [e.stream_version for e in abandoned.events]

    assert form_row(demo, subject, IC)["status"] == "in_progress"
    assert stored(demo) == folded(demo)


def test_a_fresh_process_folds_from_the_ledger(demo: Platform) -> None:
    site = Site(demo, COORDINATOR)
    subject = screened(site)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, IC, items(ICDAT="2026-01-05")))
    fresh = bootstrap(demo.settings, clock=demo.clock)
    fresh.vault = demo.vault
    try:
        Site(fresh, COORDINATOR).outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, IC, items(ICVERS="1.0")))
        assert form_row(fresh, subject, IC)["status"] == "complete"
        assert stored(fresh) == folded(fresh)
    finally:
        fresh.close()


def test_pages_read_work_lists_by_site_and_oldest_first(demo: Platform) -> None:
    site = Site(demo, COORDINATOR)
    first, second = screened(site), screened(site, "0102")
    for subject in (first, second):
        site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, IC, items(ICDAT="2026-01-05", ICVERS="1.0")))
        site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, DM, items(SEX="F")))
    with demo.engine.connect() as connection:
        assert status.count_subjects(connection, STUDY) == 2
        assert status.count_subjects(connection, STUDY, frozenset({"0102"})) == 1
        assert [r["subject_id"] for r in status.subject_page(connection, STUDY, offset=1, limit=1)] == [second]
        assert status.count_work(connection, STUDY, status.VERIFY) == 2
        verify_a = status.work_page(connection, STUDY, status.VERIFY, frozenset({"0101"}))
        assert [(r["subject_id"], r["form"]) for r in verify_a] == [(first, str(IC))]
        assert status.count_work(connection, STUDY, status.INCOMPLETE, frozenset({"0102"})) == 1
        assert status.count_unsigned(connection, STUDY) == 2
        # no anchor (DAY1) date yet, so no window is known: nothing can be overdue
        assert status.count_overdue(connection, STUDY, "2030-01-01") == 0
    site.outcome(handlers.record_visit_date, STUDY, cmd.RecordVisitDate(first, VisitKey("DAY1"), "2026-01-05"))
    with demo.engine.connect() as connection:
        assert status.count_overdue(connection, STUDY, "2026-01-20") == 0
        late = status.overdue_page(connection, STUDY, "2030-01-01")
        assert status.count_overdue(connection, STUDY, "2030-01-01", frozenset({"0102"})) == 0
        visits = status.visits_of(connection, STUDY, [first])[first]
    assert [(r["subject_id"], r["visit"]) for r in late][:2] == [(first, "WEEK2"), (first, "WEEK4")]
    assert late[0]["due_by"] == "2026-01-22" == next(v for v in visits if v["visit"] == "WEEK2")["latest"]
    assert [v["visit"] for v in visits][:2] == ["SCREENING", "DAY1"]
