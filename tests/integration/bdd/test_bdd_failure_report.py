"""A changed expectation in a temp copy of the demo features: exit 1, the scenario named, expected vs actual."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from tests.integration.bdd.conftest import DEMO_DIR, StudyDir, vitals_feature
from trialstack.cli.bdd import app
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

runner = CliRunner()
SCENARIO = "A screening SBP above 179 mmHg raises an eligibility query"
EXPECTED = '    And BMI on the "Screening" vital signs is 26.3\n'


def test_changing_one_expected_outcome_fails_the_run_naming_the_scenario(tmp_path: Path) -> None:
    study = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, study)
    feature = study / "features" / "02_vital_signs.feature"
    text = feature.read_text(encoding="utf-8")
    assert text.count(EXPECTED) == 1
    feature.write_text(text.replace(EXPECTED, EXPECTED.replace("26.3", "26.4")), encoding="utf-8")
    line = text[: text.index(EXPECTED)].count("\n") + 1
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"

    result = runner.invoke(app, ["run", str(study), "--junit", str(junit), "--html", str(html)])

    assert result.exit_code == 1
    out = result.stdout
    assert f"✗ {SCENARIO}" in out
    assert f'And BMI on the "Screening" vital signs is 26.4  (features/02_vital_signs.feature:{line})' in out
    assert "expected: 26.4" in out and "actual:   26.3" in out
    assert "events produced:" in out and "ItemValueDerived" in out and '"value":"26.3"' in out
    assert "FAILED: " in out and " passed, 1 failed, 0 in error" in out
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    failed = [case for case in cases if case.find("failure") is not None]
    assert [case.get("name") for case in failed] == [SCENARIO]
    failure = failed[0].find("failure")
    assert failure is not None and failure.text is not None
    assert "expected: 26.4" in failure.text and "ItemValueDerived" in failure.text
    version = study_version(load_study_file(study / "study.yaml"))
    page = html.read_text(encoding="utf-8")
    assert version.hash in page and "FAILED" in page and SCENARIO in page


def test_a_failing_then_reports_the_events_of_the_action_under_test(study_dir: StudyDir) -> None:
    study = study_dir(vitals=vitals_feature(sbp="150", expected="fails"))
    result = runner.invoke(app, ["run", str(study)])
    assert result.exit_code == 1
    out = result.stdout
    assert 'Then the check "VS-SBP-ELIG" fails  (features/vitals.feature:' in out
    assert "expected: VS-SBP-ELIG fails" in out and "actual:   VS-SBP-ELIG passes on SCREENING.VS" in out
    assert "ItemValueEntered" in out and '"item":"SYSBP"' in out
