"""`trialstack labs import` on SQLite: real HL7 and FHIR samples (unknown patients: triage, a re-import adds
nothing), a CSV of the demo study with refused rows (exit 1, nothing written; --accept-valid; --dry-run), a bad
mapping (exit 2 naming the column), and triage worked from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.conftest import shared_data
from tests.enrolling import STUDY, enrolled_subject
from tests.integration.labs.lab_study import count_events, publish_lab_study
from trialstack.bootstrap import Platform, bootstrap
from trialstack.cli.labs import sniff_format
from trialstack.cli.main import app
from trialstack.clock import FixedClock
from trialstack.labs import readmodel as rm
from trialstack.settings import Settings

runner = CliRunner()
HL7 = "hl7v2-oru-samples"
NIST = [f"ORU_R01_2.5.1_SampleTestCase{n}.hl7" for n in (1, 2, 3)]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'labs.db'}"


@pytest.fixture
def study(url: str) -> Iterator[Platform]:
    platform = bootstrap(
        Settings(database_url=url), clock=FixedClock(datetime(2026, 1, 5, 9, tzinfo=UTC)), migrate=True
    )
    publish_lab_study(platform)
    try:
        yield platform
    finally:
        platform.close()


def labs(url: str, *args: str, input: str | None = None) -> Result:
    return runner.invoke(app, ["labs", *args, "--db", url], input=input)


def imported(url: str, file: Path, *args: str) -> tuple[Result, dict[str, Any]]:
    result = labs(url, "import", str(file), "--study", STUDY, "--source", "CENTRAL", "--json", *args)
    return result, json.loads(result.stdout)


def triage_count(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return len(rm.triage_items(connection, STUDY))


def test_formats_are_sniffed_from_content() -> None:
    assert sniff_format(b"\xef\xbb\xbfMSH|^~\\&|LAB") == "hl7"
    assert sniff_format(b'{\n  "resourceType": "Bundle"') == "fhir"
    assert sniff_format(b"patient_id,test_code,value\n") == "csv"
    assert sniff_format(b"patient_id\ttest_code\tvalue\n") == "tsv"


def test_nist_hl7_results_of_unknown_patients_wait_in_triage_and_a_reimport_adds_nothing(
    study: Platform, url: str, tmp_path: Path
) -> None:
    file = tmp_path / "nist.hl7"
    file.write_bytes(b"\r\n".join(shared_data(HL7, name).read_bytes().strip() for name in NIST))
    result, report = imported(url, file)
    assert result.exit_code == 0, result.output
    assert report["rows"] == 3 and report["refused"] == 0 and report["committed"] is True
    assert report["unmatched"] == 3 == triage_count(study)
    before = count_events(study)
    again, repeat = imported(url, file)
    assert again.exit_code == 0 and (repeat["repeated"], repeat["unmatched"]) == (3, 0)
    assert count_events(study) == before


def test_an_hl7_message_of_another_type_is_a_located_refusal(study: Platform, url: str) -> None:
    result, report = imported(url, shared_data(HL7, "adt-example.hl7"), "--format", "hl7")
    assert result.exit_code == 1
    assert report["errors"][0]["field"] == "MSH-9" and "ORU^R01" in report["errors"][0]["reason"]


def test_synthea_fhir_lab_results_of_unknown_patients_go_to_triage_and_a_repeat_adds_nothing(
    study: Platform, url: str
) -> None:
    bundle = next(iter(sorted(shared_data("smart-synthea-fhir-r4").glob("*.json"))))
    imported_once, report = imported(url, bundle)
    assert imported_once.exit_code == 0 and report["unmatched"] == report["rows"] > 0 and report["received"] == 0
    assert triage_count(study) == report["unmatched"]
    written = count_events(study)
    _again, repeat = imported(url, bundle)
    assert repeat["repeated"] == report["unmatched"] and count_events(study) == written


CSV_HEADER = "patient_id,accession,test_code,value,unit,collected_at\n"


def csv_file(tmp_path: Path, subject: str) -> Path:
    file = tmp_path / "central.csv"
    file.write_text(
        CSV_HEADER
        + f"{subject},A1,K,4.0,mmol/L,2026-01-05T08:30:00\n"
        + f"{subject},A1,CREA,97,umol/L,2026-01-05T08:30:00\n"
        + f"{subject},A1,XYZ,1,mg/dL,2026-01-05T08:30:00\n"
        + f"{subject},A1,ALT,,U/L,2026-01-05T08:30:00\n"
    )
    return file


def test_a_csv_with_refused_rows_writes_nothing_unless_the_valid_rows_are_accepted(
    study: Platform, url: str, tmp_path: Path
) -> None:
    subject = enrolled_subject(study)
    file = csv_file(tmp_path, subject)
    before = count_events(study)
    result = labs(url, "import", str(file), "--study", STUDY, "--source", "CENTRAL")
    assert result.exit_code == 1
    assert "nothing written" in result.stdout
    assert "line 4, test code" in result.stdout and "line 5, value" in result.stdout
    assert count_events(study) == before

    dry, report = imported(url, file, "--accept-valid", "--dry-run")
    assert dry.exit_code == 0 and report["received"] == 2 and report["committed"] is False
    assert count_events(study) == before

    accepted, report = imported(url, file, "--accept-valid")
    assert accepted.exit_code == 0 and (report["received"], report["refused"]) == (2, 2)
    with study.engine.connect() as connection:
        assert {row["test"] for row in rm.results_of_subject(connection, STUDY, subject)} == {"K", "CREAT"}
    written = count_events(study)
    _again, repeat = imported(url, file, "--accept-valid")
    assert repeat["repeated"] == 2 and count_events(study) == written


def test_a_mapping_naming_a_missing_column_exits_2_naming_it(study: Platform, url: str, tmp_path: Path) -> None:
    file = tmp_path / "vendor.csv"
    file.write_text("SUBJ;CODE;RES;DTC\nX;K;4;2026-01-05\n")
    mapping = tmp_path / "vendor.yaml"
    mapping.write_text("columns: {patient_id: SUBJ, test_code: CODE, value: RESULT, collected_at: DTC}\n")
    result = labs(url, "import", str(file), "--study", STUDY, "--source", "CENTRAL", "--mapping", str(mapping))
    assert result.exit_code == 2
    assert "'RESULT'" in result.output
    missing = labs(url, "import", str(tmp_path / "absent.csv"), "--study", STUDY, "--source", "CENTRAL")
    assert missing.exit_code == 2 and "cannot be read" in missing.output


def test_triage_is_listed_assigned_and_rejected_by_a_data_manager(study: Platform, url: str, tmp_path: Path) -> None:
    subject = enrolled_subject(study)
    file = tmp_path / "unknown.csv"
    file.write_text(
        CSV_HEADER + "LAB-1,B1,K,4.2,mmol/L,2026-01-05T08:30:00\n" + "LAB-2,B2,K,4.3,mmol/L,2026-01-05T08:30:00\n"
    )
    assert imported(url, file)[0].exit_code == 0
    with study.engine.connect() as connection:
        first, second = (item["triage_id"] for item in rm.triage_items(connection, STUDY))
    listed = labs(url, "triage", "--study", STUDY)
    assert listed.exit_code == 0 and "LAB-1" in listed.stdout and "LAB-2" in listed.stdout
    created = runner.invoke(
        app, ["user", "add", "dana", "--role", "data_manager", "--study", STUDY, "--password-stdin",
              "--db", url], input="correct horse battery staple\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    password = "correct horse battery staple\n"
    assigned = labs(url, "assign", first, "--study", STUDY, "--subject", subject, "--reason", "lab id typo",
                    "--as", "dana", "--password-stdin", input=password)  # fmt: skip
    assert assigned.exit_code == 0, assigned.output
    rejected = labs(url, "reject", second, "--study", STUDY, "--reason", "not our study", "--as", "dana",
                    "--password-stdin", input=password)  # fmt: skip
    assert rejected.exit_code == 0, rejected.output
    assert triage_count(study) == 0
    with study.engine.connect() as connection:
        assert [row["test"] for row in rm.results_of_subject(connection, STUDY, subject)] == ["K"]
