"""`trialstack consent copy`: the signed copy rendered again from the ledger is the one signed, byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import REPO_ROOT
from trialstack.bootstrap import Platform
from trialstack.capture import commands as capture_cmd
from trialstack.capture import handlers as capture
from trialstack.cli.main import app
from trialstack.consent import commands as cmd
from trialstack.consent import handlers as consent
from trialstack.identity import commands as identity_cmd
from trialstack.identity import handlers as identity
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

runner = CliRunner()
STUDY = "HTN-201"
STAFF = Actor("user:cora", "study_coordinator")
PASSWORD = "Correct-Horse-9-battery"


def test_the_copy_renders_again_identically(platform: Platform, database_url: str, tmp_path: Path) -> None:
    definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", "study.yaml"))
        uow.commit()
    with platform.unit_of_work(STAFF) as uow:
        subject = capture.screen_subject(uow, STUDY, capture_cmd.ScreenSubject("0101", "2026-01-05")).subject_id
        uow.commit()
    assert subject is not None
    with platform.unit_of_work(STAFF) as uow:
        code = consent.invite_participant(uow, STUDY, "0101", cmd.InviteParticipant(subject)).code
        uow.commit()
    with platform.unit_of_work(Actor("user:pat", "participant")) as uow:
        activated = consent.activate_participant(uow, cmd.ActivateParticipant(code, "pat", PASSWORD))
        identity.open_participant_account(
            uow, identity_cmd.OpenParticipantAccount("pat", PASSWORD, STUDY, activated.site_id, subject)
        )
        uow.commit()
    read = dict.fromkeys(range(1, 8), 9)
    sign = cmd.SignConsent(
        subject, "ICF", "1.0", "es", "José Núñez", read, {"Q1": "No, ninguno de los dos"}, {"BIOBANK": True}
    )
    with platform.unit_of_work(Actor("user:pat", "participant")) as uow:
        (signed,) = consent.sign_consent(uow, STUDY, "pat", sign)
        uow.commit()
    out = tmp_path / "copy.pdf"
    result = runner.invoke(
        app, ["consent", "copy", "--study", STUDY, "--subject", subject, "--document", "ICF", "--out", str(out),
              "--db", database_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == signed.payload["copy_sha256"]
    assert "identical" in result.output
    unknown = runner.invoke(
        app, ["consent", "copy", "--study", STUDY, "--subject", "0102-999", "--document", "ICF", "--db", database_url]
    )
    assert unknown.exit_code != 0 and "no electronic signature" in unknown.output
