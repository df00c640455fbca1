"""`trialstack demo` then `trialstack export odm`: XSD-valid ODM 1.3.2, one SubjectData per subject in the database,
on SQLite and PostgreSQL; the demo study's metadata alone is valid ODM too."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.conftest import shared_data
from tests.standards.conftest import assert_valid_odm_132
from trialstack.bootstrap import bootstrap
from trialstack.capture.readmodel import subject_table
from trialstack.cli.main import app

STUDY = "HTN-201"
SUBJECTS = 12  # the simulation takes about 0.2 s per subject; the count is what matters, not the size
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
runner = CliRunner()


@pytest.fixture
def demo_database(database_url: str) -> str:
    shared_data("cdisc-odm-1.3.2-schema", "ODM1-3-2.xsd")
    result = runner.invoke(app, ["demo", "--subjects", str(SUBJECTS), "--seed", "7", "--db", database_url])
    assert result.exit_code == 0, result.output
    return database_url


def _subjects_in(url: str) -> int:
    platform = bootstrap(database_url=url)
    try:
        with platform.engine.connect() as connection:
            statement = select(func.count()).select_from(subject_table).where(subject_table.c.study_id == STUDY)
            return int(connection.execute(statement).scalar_one())
    finally:
        platform.close()


def _export(url: str, out: Path, *options: str) -> etree._Element:
    result = runner.invoke(app, ["export", "odm", "--study", STUDY, *options, "--out", str(out), "--db", url])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert_valid_odm_132(data)
    return etree.fromstring(data)


def test_clinical_data_of_every_subject_and_the_metadata_alone_are_valid_odm(
    demo_database: str, tmp_path: Path
) -> None:
    root = _export(demo_database, tmp_path / "x.xml", "--clinical-data")
    subjects = root.findall("odm:ClinicalData/odm:SubjectData", NS)
    assert len(subjects) == _subjects_in(demo_database) == SUBJECTS
    assert root.findall(".//odm:ItemData/odm:AuditRecord", NS)
    assert root.findall(".//odm:ItemData/odm:Annotation", NS)  # the simulation's queries
    users = {user.get("OID") for user in root.findall("odm:AdminData/odm:User", NS)}
    refs = {ref.get("UserOID") for ref in root.iterfind(".//odm:UserRef", NS)}
    assert refs <= users and "user:demo-study-coordinator" in users
    metadata = _export(demo_database, tmp_path / "metadata.xml")  # the demo study's metadata alone
    assert metadata.get("FileType") == "Snapshot" and metadata.find("odm:ClinicalData", NS) is None
    assert metadata.find("odm:Study/odm:MetaDataVersion", NS) is not None
