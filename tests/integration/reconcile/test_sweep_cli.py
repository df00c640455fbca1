"""`trialstack reconcile sweep` on SQLite and PostgreSQL: the system clock's today (long after these 2026 visits)
finds both of the subject's expected samples missing, once."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from tests.enrolling import STUDY, enrolled_subject
from tests.integration.identity.support import loaded
from tests.integration.reconcile.support import discrepancies, record_visit, system_queries
from trialstack.bootstrap import Platform
from trialstack.cli.main import app
from trialstack.clock import FixedClock

__all__ = ["loaded"]

runner = CliRunner()


def test_the_sweep_command_raises_each_missing_sample_once(loaded: Platform, clock: FixedClock) -> None:
    subject = enrolled_subject(loaded, "0101", "2026-01-05")
    clock.set(datetime(2026, 2, 3, 9, 0, tzinfo=UTC))
    record_visit(loaded, subject, "WEEK4", "2026-02-02")
    url = loaded.settings.database_url
    first = runner.invoke(app, ["reconcile", "sweep", "--study", STUDY, "--db", url])
    assert first.exit_code == 0, first.output
    assert f"{STUDY}: 2 missing-sample discrepancies raised or resolved" in first.output
    again = runner.invoke(app, ["reconcile", "sweep", "--study", STUDY, "--db", url])
    assert f"{STUDY}: 0 missing-sample" in again.output
    assert sorted(d.visit or "" for d in discrepancies(loaded)) == ["SCREENING", "WEEK4"]
    assert {q["status"] for q in system_queries(loaded, subject).values()} == {"open"}
