"""The reconcile policy reads its read model once per batch, not once per event: a lab import of 2,000 results
(flushed every 1,000, as the importer does) makes a bounded number of SQL reads, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event

from tests.enrolling import enrolled_subject
from tests.integration.identity.support import loaded
from tests.integration.reconcile.support import CENTRAL_LAB, append_results, discrepancies, lab_result, record_visit
from trialstack.bootstrap import Platform
from trialstack.clock import FixedClock
from trialstack.labs.events import LabResultReceived

__all__ = ["loaded"]

VISITS = ("SCREENING", "WEEK4")
TESTS = ("K", "SODIUM", "CREAT", "ALT", "GLUC", "HGB")
VALUES = {"K": "4.4", "SODIUM": "140", "CREAT": "0.90", "ALT": "25", "GLUC": "95", "HGB": "14.1"}
COLLECTED = {"SCREENING": "2026-01-05", "WEEK4": "2026-02-02"}
OUT_OF_WINDOW = (994, 995, 1998, 1999)
"""Week 4 samples: the first two are superseded by later results in window in the second batch, the last two stay."""


@contextmanager
def counted_selects(engine: Engine) -> Iterator[list[str]]:
    """Every SELECT run through SQLAlchemy on the engine while the block runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _results(subjects: list[str], start: int, count: int) -> list[LabResultReceived]:
    results = []
    for n in range(start, start + count):
        subject, visit, test = subjects[n % len(subjects)], VISITS[n // 2 % 2], TESTS[n % len(TESTS)]
        collected = "2026-03-20" if n in OUT_OF_WINDOW else COLLECTED[visit]
        results.append(lab_result(subject, visit, test, VALUES[test], collected, result_id=f"R{n:05d}"))
    return results


def test_a_batch_of_2000_results_makes_a_bounded_number_of_reads(loaded: Platform, clock: FixedClock) -> None:
    subjects = [enrolled_subject(loaded, site, "2026-01-05") for site in ("0101", "0102")]
    clock.set(datetime(2026, 3, 21, 9, 0, tzinfo=UTC))
    for subject in subjects:
        record_visit(loaded, subject, "WEEK4", "2026-02-02")
    with counted_selects(loaded.engine) as selects, loaded.unit_of_work(CENTRAL_LAB) as uow:
        append_results(uow, _results(subjects, 0, 1000))
        uow.flush()
        append_results(uow, _results(subjects, 1000, 1000))
        uow.flush()
        uow.commit()
    reconcile_reads = [s for s in selects if "rm_reconcile_" in s]
    assert 4 <= len(reconcile_reads) <= 2 * 4, reconcile_reads  # two batches, four tables each (24 in all here)
    assert len(selects) <= 60, f"{len(selects)} SELECTs for 2,000 results"
    assert sorted((d.subject_id, d.test) for d in discrepancies(loaded)) == [
        (subjects[0], "K"),
        (subjects[1], "SODIUM"),
    ]
    resolved = sorted((d.subject_id, d.test) for d in discrepancies(loaded, status="resolved"))
    assert resolved == [(subjects[0], "GLUC"), (subjects[1], "HGB")]
