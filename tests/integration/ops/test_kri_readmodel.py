"""KRIs on SQLite and PostgreSQL: the read model follows the handlers' events in their unit of work, the figures
and their drill-down rows agree, a KRI check records each crossing once, and `rebuild` gives the same read model."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.integration.identity.support import loaded
from tests.integration.ops.scenario import MONITOR, STUDY, Trial, conduct
from trialstack.bootstrap import Platform
from trialstack.clock import FixedClock
from trialstack.ledger.projections import projections_checksum, rebuild
from trialstack.ops.drilldown import kri_rows
from trialstack.ops.figures import kri_report, study_figures
from trialstack.ops.handlers import SYSTEM_OPS, check_kris
from trialstack.ops.readmodel import kri_table, readmodel_metadata
from trialstack.protocol.definition import KriId, StudyDefinition
from trialstack.protocol.readmodel import version_in_force
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers as queries

__all__ = ["loaded"]


@pytest.fixture
def trial(loaded: Platform, clock: FixedClock) -> Trial:
    return conduct(loaded, clock)


def _definition(platform: Platform) -> StudyDefinition:
    with platform.engine.connect() as connection:
        version = version_in_force(connection, STUDY)
    assert version is not None
    return version.definition


def _figures(platform: Platform, clock: FixedClock) -> dict[tuple[str, str], tuple[str | None, str]]:
    with platform.engine.connect() as connection:
        found = study_figures(connection, _definition(platform), STUDY, clock.now().date())
    return {(f.kri.value, f.site_id): (None if f.value is None else str(f.value), f.status) for f in found}


def _check(platform: Platform) -> list[tuple[str, str, str, str]]:
    with platform.unit_of_work(SYSTEM_OPS) as uow:
        recorded = check_kris(uow, STUDY)
        uow.commit()
    return [
        (e.payload["kri"], e.payload["site_id"], e.payload["from_status"], e.payload["to_status"]) for e in recorded
    ]


def test_the_figures_follow_the_events_of_each_context(loaded: Platform, clock: FixedClock, trial: Trial) -> None:
    figures = _figures(loaded, clock)
    assert figures[("SCREEN_FAILURE_RATE", "0101")] == ("0.0", "ok")
    assert figures[("SCREEN_FAILURE_RATE", "0102")] == ("100.0", "breach")
    assert figures[("SCREEN_FAILURE_RATE", "*")] == ("50.0", "breach")
    assert figures[("QUERY_TURNAROUND", "0101")] == ("2.0", "ok"), "opened on the 10th, closed on the 12th"
    assert figures[("QUERY_AGE_OVER_30", "0101")] == ("3", "warn")
    assert figures[("QUERY_AGE_OVER_30", "*")] == ("4", "none"), "the demo judges this count per site only"
    assert figures[("MISSING_PAGES", "0101")] == ("1", "ok"), "Week 2's vital signs were never entered"
    assert figures[("MISSING_PAGES", "0102")] == ("2", "ok"), "the screen failure's Day 1 forms"
    assert figures[("EDIT_CHECK_FAILURES", "0101")] == ("12.5", "warn"), "1 failed check in 8 forms"
    assert figures[("VISITS_OUT_OF_WINDOW", "0101")] == ("100.0", "breach")
    assert figures[("AE_RATE", "0101")][0] == "82.26" and figures[("SAE_RATE", "0101")][0] == "41.13"
    assert figures[("AE_RATE", "0102")] == (None, "none"), "no time on study, no rate"
    assert figures[("ENROLMENT_VS_PLAN", "0101")] == ("4.7", "breach"), "1 of 21.2 planned by 20 March"


def test_every_figure_drills_down_to_the_rows_it_counts(loaded: Platform, clock: FixedClock, trial: Trial) -> None:
    definition, day = _definition(loaded), clock.now().date()
    with loaded.engine.connect() as connection:
        report = kri_report(connection, definition, STUDY, day, None)
        rows = {kri: kri_rows(connection, definition, STUDY, kri, day, None)["rows"] for kri in KriId}
        mine = kri_rows(connection, definition, STUDY, KriId.QUERY_AGE_OVER_30, day, None, "0102")["rows"]
    study = {kri["kri"]: kri["study"] for kri in report["kris"]}
    for kri in (KriId.QUERY_AGE_OVER_30, KriId.OPEN_QUERIES, KriId.MISSING_PAGES, KriId.SDV_BACKLOG):
        assert len(rows[kri]) == int(study[kri.value]["value"]), kri
    assert len(rows[KriId.AE_RATE]) == study["AE_RATE"]["numerator"] == 2
    assert [r["form"] for r in rows[KriId.SAE_RATE]] == ["AE.1"]
    assert [r["check_id"] for r in rows[KriId.EDIT_CHECK_FAILURES]] == ["AE-START-AFTER-IC"]
    assert [r["query_id"] for r in rows[KriId.QUERY_TURNAROUND]] == [trial.manual_query]
    assert {(r["subject_id"], r["visit"]) for r in rows[KriId.VISITS_OUT_OF_WINDOW]} >= {(trial.enrolled, "WEEK2")}
    assert ("0101-001", "WEEK2.VS") in {(r["subject_id"], r["form"]) for r in rows[KriId.MISSING_PAGES]}
    assert "SCREENING.DM" not in {r["form"] for r in rows[KriId.SDV_BACKLOG] if r["subject_id"] == trial.enrolled}
    assert {r["site_id"] for r in mine} == {"0102"} and len(mine) == 1
    series = report["enrolment"]["0101"]
    assert series[0] == {"month": "2026-01", "actual": 1, "planned": "8.0"} and series[-1]["month"] == "2026-03"


def test_a_crossing_is_recorded_once_and_its_return_once(loaded: Platform, clock: FixedClock, trial: Trial) -> None:
    first = _check(loaded)
    assert ("SCREEN_FAILURE_RATE", "0102", "ok", "breach") in first
    assert ("QUERY_AGE_OVER_30", "0102", "ok", "warn") in first
    assert not [c for c in first if c[2] == c[3]]
    assert _check(loaded) == [], "nothing changed: nothing recorded"
    with loaded.engine.connect() as connection:
        oldest = kri_rows(connection, _definition(loaded), STUDY, KriId.QUERY_AGE_OVER_30, clock.now().date(), None,
                          "0102")["rows"][0]["query_id"]  # fmt: skip
    with loaded.unit_of_work(MONITOR) as uow:
        queries.close_query(uow, STUDY, qcmd.CloseQuery(oldest, "Screening was on the day of Day 1: accepted."))
        uow.commit()
    assert set(_check(loaded)) == {
        ("QUERY_AGE_OVER_30", "0102", "warn", "ok"),
        ("QUERY_TURNAROUND", "0102", "ok", "breach"),
        ("QUERY_TURNAROUND", "*", "ok", "breach"),
    }, "closed after 74 days: no longer old, but slow"
    with loaded.engine.connect() as connection:
        recorded = connection.execute(
            select(kri_table.c.status, kri_table.c.value, kri_table.c.since).where(
                kri_table.c.kri == "QUERY_AGE_OVER_30", kri_table.c.site_id == "0102"
            )
        ).one()
    assert tuple(recorded) == ("ok", "0", "2026-03-20")


def test_rebuild_replays_the_same_kri_read_model(loaded: Platform, clock: FixedClock, trial: Trial) -> None:
    _check(loaded)
    clock.set(datetime(2026, 4, 30, 9, 0, tzinfo=UTC))
    _check(loaded)
    before = projections_checksum(loaded.engine, loaded.wiring)
    report_before = _figures(loaded, clock)
    with loaded.engine.begin() as connection:
        connection.execute(kri_table.delete())
    assert projections_checksum(loaded.engine, loaded.wiring) != before
    rebuild(loaded.engine, loaded.wiring)
    assert projections_checksum(loaded.engine, loaded.wiring) == before
    assert _figures(loaded, clock) == report_before
    with loaded.engine.connect() as connection:
        counts = {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in readmodel_metadata.sorted_tables}  # fmt: skip
    assert all(count for name, count in counts.items() if name != "rm_ops_kit"), counts  # no kit was shipped
    assert Decimal(report_before[("SAE_RATE", "0101")][0] or "0") < Decimal("41.13"), "longer on study, lower rate"
