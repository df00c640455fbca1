"""`trialstack export odm`: the version in force of a loaded study, XSD-valid, written only when complete."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.standards.conftest import assert_valid_odm_132, odmlib
from trialstack.bootstrap import bootstrap
from trialstack.cli.export import app
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.odm_import import import_odm, import_odm_file

pytestmark = pytest.mark.usefixtures("odm_xsds")
runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A SQLite ledger holding odmlib's CDASH study as the version in force of TRACE-XML-SAFETY01."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    platform = bootstrap(database_url=url, migrate=True)
    version = study_version(import_odm_file(odmlib("cdash-odm-test.xml")).definition)
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(version, "odm-1.3.2", "cdash-odm-test.xml"))
        uow.commit()
    platform.close()
    return url


def test_the_version_in_force_is_exported(database: str, tmp_path: Path) -> None:
    out = tmp_path / "export.xml"
    result = runner.invoke(app, ["odm", "--study", "TRACE-XML-SAFETY01", "--out", str(out), "--db", database])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert_valid_odm_132(data)
    published = study_version(import_odm_file(odmlib("cdash-odm-test.xml")).definition)
    assert study_version(import_odm(data, str(out)).definition).hash == published.hash
    assert f"version {published.hash}" in result.output
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_a_failed_export_writes_nothing(database: str, tmp_path: Path) -> None:
    out = tmp_path / "export.xml"
    result = runner.invoke(app, ["odm", "--study", "NOPE", "--clinical-data", "--out", str(out), "--db", database])
    assert result.exit_code == 2
    assert "study 'NOPE' has no published version" in " ".join(result.output.split())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ledger.db"]


def test_a_study_without_captured_data_has_empty_clinical_data(database: str, tmp_path: Path) -> None:
    out = tmp_path / "export.xml"
    arguments = ["odm", "--study", "TRACE-XML-SAFETY01", "--clinical-data", "--out", str(out), "--db", database]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert_valid_odm_132(data)
    assert b"<ClinicalData " in data and b"<SubjectData " not in data


def test_an_uninitialised_database_is_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["odm", "--study", "X", "--out", str(tmp_path / "x.xml"), "--db", url])
    assert result.exit_code == 2 and "run `trialstack init` first" in " ".join(result.output.split())
