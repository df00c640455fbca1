"""The demo study's specification runs green in CI and exercises every edit check, visit and criterion."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import trialstack
from tests.integration.bdd.conftest import DEMO_DIR
from trialstack.bdd.results import RunResult
from trialstack.bdd.runner import prepare, run_specification
from trialstack.cli.bdd import app
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_run() -> RunResult:
    version = study_version(load_study_file(DEMO_DIR / "study.yaml"))
    return run_specification(prepare(version, DEMO_DIR / "features"))


def test_every_demo_scenario_passes(demo_run: RunResult) -> None:
    failures = [f"{r.scenario.location} {r.scenario.name}: {r.failure}" for r in demo_run.failures]
    assert failures == []
    assert len(demo_run.scenarios) >= 90


def test_the_demo_features_exercise_every_edit_check_visit_and_criterion(demo_run: RunResult) -> None:
    report = demo_run.coverage
    assert [line.id for line in report.edit_checks.untested] == []
    assert report.edit_checks.percent == 100.0 and report.edit_checks.total == 44
    assert report.visits.percent == 100.0
    assert report.criteria.percent == 100.0


def test_every_edit_check_is_also_seen_passing_after_a_correction(demo_run: RunResult) -> None:
    assert [line.id for line in demo_run.coverage.edit_checks.lines if "passed" not in line.seen] == []


def test_every_scenario_ledger_verifies(demo_run: RunResult) -> None:
    assert all(result.chain_verified and result.ledger_events > 1 for result in demo_run.scenarios)


def test_bdd_run_on_the_demo_exits_0_and_writes_the_evidence(tmp_path: Path, demo_run: RunResult) -> None:
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"
    result = runner.invoke(app, ["run", str(DEMO_DIR), "--junit", str(junit), "--html", str(html)])
    assert result.exit_code == 0, result.output
    assert f"StudyVersion {demo_run.version_hash}" in result.stdout
    assert "0 failed, 0 in error" in result.stdout and "edit checks 44/44 (100%)" in result.stdout
    suites = ET.parse(junit).getroot()
    assert suites.get("failures") == "0" and int(suites.get("tests", "0")) == len(demo_run.scenarios)
    properties = {p.get("name"): p.get("value") for p in suites.iter("property")}
    assert properties["study_version_hash"] == demo_run.version_hash
    assert properties["trialstack_version"] == trialstack.__version__
    page = html.read_text(encoding="utf-8")
    assert demo_run.version_hash in page and "PASSED" in page and trialstack.__version__ in page
