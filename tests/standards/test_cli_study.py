"""`trialstack study validate|show|load|diff` read YAML, ODM and USDM alike, by content, through one loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.standards.conftest import lzzt_usdm, odm_example, odmlib
from trialstack.bootstrap import bootstrap
from trialstack.cli.main import app
from trialstack.protocol.readmodel import study_version_table

pytestmark = pytest.mark.usefixtures("odm_xsds")
runner = CliRunner()


def test_validate_a_usdm_study_exits_0_and_prints_its_warnings() -> None:
    result = runner.invoke(app, ["study", "validate", str(lzzt_usdm())])
    assert result.exit_code == 0, result.output
    assert "valid usdm-4, H2Q-MC-LZZT protocol version 2, hash " in result.stdout
    assert "warning: /study/versions/0/studyDesigns/0/" in result.stderr
    count = result.stderr.count("warning: ")
    assert result.stdout.rstrip().endswith(f"{count} warnings")


def test_show_json_lists_the_lzzt_visits_with_their_windows() -> None:
    result = runner.invoke(app, ["study", "show", str(lzzt_usdm()), "--format", "json"])
    assert result.exit_code == 0, result.output
    visits = {visit["id"]: visit for visit in json.loads(result.stdout)["definition"]["schedule"]["visits"]}
    assert (visits["E3"]["name"], visits["E3"]["day"]) == ("Baseline", 1)
    assert (visits["E4"]["day"], visits["E4"]["window"]) == (15, {"early": 3, "late": 3})
    assert (visits["E9"]["day"], visits["E9"]["window"]) == (85, {"early": 4, "late": 4})
    assert visits["E1"]["type"] == "screening"


@pytest.mark.parametrize("command", ["validate", "show"])
def test_report_writes_the_mapping_report(command: str, tmp_path: Path) -> None:
    report = tmp_path / "lzzt-report.txt"
    result = runner.invoke(app, ["study", command, str(lzzt_usdm()), "--report", str(report)])
    assert result.exit_code == 0, result.output
    text = report.read_text(encoding="utf-8")
    assert text.startswith(f"Mapping report for {lzzt_usdm()} (USDM 4.0.0)")
    assert "## Not mapped" in text


def test_an_odm_import_has_a_report_too_and_yaml_has_none(tmp_path: Path) -> None:
    report = tmp_path / "odm-report.txt"
    result = runner.invoke(app, ["study", "validate", str(odmlib("cdash-odm-test.xml")), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "valid odm-1.3.2" in result.stdout
    assert report.read_text(encoding="utf-8").startswith("Mapping report for")
    demo = Path(__file__).resolve().parents[2] / "studies" / "demo" / "study.yaml"
    result = runner.invoke(app, ["study", "validate", str(demo), "--report", str(tmp_path / "none.txt")])
    assert result.exit_code == 0 and "no mapping report" in result.stderr
    assert not (tmp_path / "none.txt").exists()


def test_an_invalid_cdisc_file_exits_1_with_located_problems() -> None:
    path = odmlib("cdash-odm-test-invalid.xml")
    result = runner.invoke(app, ["study", "validate", str(path)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{path}:14:")


@pytest.mark.parametrize(
    ("source", "source_format"),
    [(lzzt_usdm, "usdm-4"), (lambda: odmlib("cdash-odm-test.xml"), "odm-1.3.2")],
    ids=["usdm", "odm-1.3.2"],
)
def test_load_records_the_source_format(source_format: str, source: object, tmp_path: Path) -> None:
    study_file = tmp_path / "study.json"  # copied away from anything beside it; the name says nothing
    assert callable(source)
    shutil.copy(source(), study_file)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    report = tmp_path / "report.txt"
    result = runner.invoke(app, ["study", "load", str(study_file), "--db", url, "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "published " in result.stdout and report.exists()
    platform = bootstrap(database_url=url)
    try:
        with platform.engine.connect() as connection:
            table = study_version_table
            rows = connection.execute(select(table.c.source_format, table.c.in_force)).all()
    finally:
        platform.close()
    assert [tuple(row) for row in rows] == [(source_format, True)]


def test_diff_reads_both_formats() -> None:
    odm_2 = odm_example("RepeatingIG-UC-D-Example.xml")
    result = runner.invoke(app, ["study", "diff", str(odm_2), str(odm_2)])
    assert result.exit_code == 0, result.output
    assert "no changes" in result.stdout
