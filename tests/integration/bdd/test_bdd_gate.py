"""The release gate of `trialstack study load`: failing features refuse the StudyVersion unless overridden."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.integration.bdd.conftest import StudyDir, vitals_feature
from trialstack.bootstrap import bootstrap
from trialstack.cli.main import app
from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.verify import verify
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

runner = CliRunner()


def load(study: Path, db: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["study", "load", str(study / "study.yaml"), "--db", db, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def ledger(db: str) -> list[RecordedEvent]:
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.engine.connect() as connection:
            assert verify(connection).ok
            return store.read_study(connection, "HTN-201")
    finally:
        platform.close()


def test_passing_features_let_the_version_be_published(study_dir: StudyDir, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    code, out = load(study_dir(vitals=vitals_feature(sbp="190", expected="fails")), db)
    assert code == 0, out
    assert "specification gate passed: 1 scenarios" in out and "published HTN-201" in out
    assert [e.event_type for e in ledger(db)] == ["StudyVersionPublished"]


def test_failing_features_refuse_the_version(study_dir: StudyDir, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    code, out = load(study_dir(vitals=vitals_feature(sbp="150", expected="fails")), db)
    assert code == 1
    assert "specification gate failed: 1 of 1 scenarios" in out
    assert "Screening vital signs: Screening SBP" in out and "expected: VS-SBP-ELIG fails" in out
    assert "refused: the StudyVersion is not published" in out
    assert ledger(db) == []


def test_an_override_needs_a_reason(study_dir: StudyDir, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    code, out = load(study_dir(vitals=vitals_feature(sbp="150", expected="fails")), db, "--override-gate")
    assert code == 2 and "--override-gate needs --reason" in out


def test_an_override_publishes_and_records_the_failing_scenarios_and_the_reason(
    study_dir: StudyDir, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    study = study_dir(vitals=vitals_feature(sbp="150", expected="fails"))
    reason = "UAT finding 12 accepted by the sponsor; fixed in protocol 1.1"
    code, out = load(study, db, "--override-gate", "--reason", reason)
    assert code == 0, out
    assert "specification gate overridden" in out
    published, overridden = ledger(db)
    assert (published.event_type, overridden.event_type) == ("StudyVersionPublished", "SpecificationGateOverridden")
    assert overridden.reason == reason and overridden.stream_type == "specification"
    payload = overridden.payload
    version = study_version(load_study_file(study / "study.yaml"))
    assert payload["version_hash"] == version.hash == published.payload["version_hash"]
    assert payload["reason"] == reason and payload["scenarios_run"] == 1
    (failing,) = payload["failing"]
    assert failing["scenario"] == "Screening SBP" and failing["step"] == 'Then the check "VS-SBP-ELIG" fails'
    assert failing["location"].startswith("features/vitals.feature:") and "does not fail" in failing["message"]


def test_features_that_cannot_run_refuse_the_version_too(study_dir: StudyDir, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    study = study_dir(typo="Feature: f\n  Scenario: s\n    Given the study is ready\n")
    code, out = load(study, db)
    assert code == 1 and "the features cannot run" in out and "features/typo.feature:3: unknown step" in out
    code, out = load(study, db, "--override-gate", "--reason", "specification rewritten in the next release")
    assert code == 0, out
    overridden = ledger(db)[-1]
    assert overridden.event_type == "SpecificationGateOverridden"
    assert overridden.payload["failing"][0]["message"].startswith('unknown step "the study is ready"')


def test_a_study_without_features_is_published_without_a_gate(study_dir: StudyDir, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    code, out = load(study_dir(), db)
    assert code == 0 and "specification gate" not in out
