"""`trialstack study`: schema, validate, show and diff, through Typer's test runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import shared_data
from trialstack.cli.study import app

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "studies" / "demo" / "study.yaml"
BAD = ROOT / "tests" / "data" / "bad" / "study"
runner = CliRunner()


def test_schema_is_the_json_schema_of_a_study_definition() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert {"study", "schedule", "forms", "edit_checks"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_validate_the_demo() -> None:
    result = runner.invoke(app, ["validate", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "valid yaml, HTN-201 protocol version 1.0, hash " in result.stdout


def test_validate_prints_every_problem_and_exits_1() -> None:
    path = BAD / "dangling_refs.yaml"
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0] == f"{path}:6:51: /schedule/visits/0/forms/1: unknown form 'LB' (known: VS)"


def test_validate_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no study definition at" in result.output


def test_odm_is_recognised_by_content_and_checked_against_its_schema(tmp_path: Path) -> None:
    shared_data("cdisc-odm-1.3.2-schema", "ODM1-3-2.xsd")
    odm = tmp_path / "study.yaml"  # the extension does not matter
    odm.write_text('<?xml version="1.0"?>\n<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"/>\n', encoding="utf-8")
    result = runner.invoke(app, ["validate", str(odm)])
    assert result.exit_code == 1
    assert f"{odm}:2:1: /ODM: ODM 1.3.2 XSD: Element 'ODM': The attribute 'FileOID' is required" in result.stdout


def test_show_text_lists_visits_with_days_and_windows() -> None:
    result = runner.invoke(app, ["show", str(DEMO)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "HTN-201" in result.stdout
    assert "days 26 to 32" in result.stdout
    assert "edit checks (32 declared" in result.stdout


def test_show_json_is_the_canonical_definition_and_its_hash() -> None:
    result = runner.invoke(app, ["show", str(DEMO), "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert len(shown["hash"]) == 64
    assert shown["definition"]["study"]["id"] == "HTN-201"


def test_diff_of_a_study_with_itself_is_empty() -> None:
    result = runner.invoke(app, ["diff", str(DEMO), str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "no changes" in result.stdout


def test_diff_json(tmp_path: Path) -> None:
    shutil.copytree(DEMO.parent / "consent", tmp_path / "consent")
    amended = tmp_path / "amended.yaml"
    amended.write_text(
        DEMO.read_text(encoding="utf-8").replace("window: {early: 5, late: 5}", "window: {early: 7, late: 5}")
    )
    result = runner.invoke(app, ["diff", str(DEMO), str(amended), "--format", "json"])
    assert result.exit_code == 0, result.output
    diff = json.loads(result.stdout)
    assert diff["changes"] == [
        {
            "entity": "visit",
            "id": "WEEK8",
            "change": "changed",
            "fields": {"window": {"old": {"early": 5, "late": 5}, "new": {"early": 7, "late": 5}}},
        }
    ]
    text = runner.invoke(app, ["diff", str(DEMO), str(amended)], env={"COLUMNS": "200"})
    assert "~ visit WEEK8 changed" in text.stdout
