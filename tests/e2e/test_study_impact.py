"""`trialstack study diff OLD NEW --db`: an amendment's impact on captured data and who must re-consent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.conftest import REPO_ROOT
from trialstack.cli.main import app
from trialstack.ledger.database import normalize_url

runner = CliRunner()
DEMO = REPO_ROOT / "studies" / "demo" / "study.yaml"


def amended(tmp_path: Path) -> Path:
    """The demo with ICF 2.0 asking everyone to re-consent, a wider WEEK2 window and a relabelled item."""
    source = DEMO.read_text()
    icf_2_0 = (
        '      - version: "2.0"\n        effective: 2026-01-05\n        ethics_approval: EC-2026-0301\n'
        "        reconsent: {}\n        texts:\n          - {language: en, file: consent/icf-2.0-en.md}\n"
    )
    changed = (
        source.replace("\nquestionnaires:", "\n" + icf_2_0 + "\nquestionnaires:")
        .replace("      day: 15\n      window: {early: 3, late: 3}", "      day: 15\n      window: {early: 4, late: 4}")
        .replace("label: Pulse rate, seated", "label: Pulse rate, seated (radial)")
        .replace('protocol_version: "1.0"', 'protocol_version: "2.0"')
    )
    assert changed.count("2.0") > source.count("2.0")
    shutil.copytree(DEMO.parent / "consent", tmp_path / "consent")
    path = tmp_path / "study-v2.yaml"
    path.write_text(changed)
    return path


def test_the_impact_names_affected_subjects_and_who_must_reconsent(database_url: str, tmp_path: Path) -> None:
    demo = runner.invoke(app, ["demo", "--subjects", "6", "--seed", "3", "--db", database_url])
    assert demo.exit_code == 0, demo.output
    result = runner.invoke(
        app, ["study", "diff", str(DEMO), str(amended(tmp_path)), "--db", database_url, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    engine = create_engine(normalize_url(database_url))
    with engine.connect() as connection:
        active = sorted(
            r[0]
            for r in connection.execute(
                text("SELECT subject_id FROM rm_subject WHERE status IN ('screening', 'enrolled')")
            )
        )
        with_pulse = sorted(
            {r[0] for r in connection.execute(text("SELECT subject_id FROM rm_item WHERE item = 'PULSE'"))}
        )
    engine.dispose()
    assert report["must_reconsent"] == active
    by_id = {(c["entity"], c["id"]): c for c in report["impact"]}
    assert by_id[("consent_version", "ICF 2.0")]["subjects"] == active
    assert by_id[("item", "VS.PULSE")]["subjects"] == with_pulse and with_pulse
    assert by_id[("visit", "WEEK2")]["fields"]["window"]["new"] == {"early": 4, "late": 4}
