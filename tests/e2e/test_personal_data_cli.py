"""As a new user would: the demo database holds no date of birth in the ledger; `subject erase` refuses what it
must, shreds what it should, and leaves a chain that verifies and an export that shows the value erased."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from trialstack.bootstrap import bootstrap
from trialstack.cli.main import app
from trialstack.ledger.database import normalize_url
from trialstack.ledger.vault import KEY_ENV, new_master_key, vault_value

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _passwords(output: str) -> dict[str, str]:
    return dict(re.findall(r"│ (demo-[a-z0-9-]+)\s+│ (\S+)\s+│", output))


def _vault_values(url: str) -> set[str]:
    """Every personal value in the vault: dates of birth, and the names participants typed to sign consent."""
    platform = bootstrap(database_url=url)
    try:
        with platform.engine.connect() as connection:
            rows = connection.execute(vault_value.select()).all()
            return {
                value
                for row in rows
                for value in platform.vault.reveal(connection, row.owner, [row.ref]).values()
                if value is not None
            }
    finally:
        platform.close()


def test_demo_then_erase(database_url: str, tmp_path: Path) -> None:
    demo = runner.invoke(app, ["demo", "--subjects", "6", "--seed", "5", "--db", database_url])
    assert demo.exit_code == 0, demo.output
    values = _vault_values(database_url)
    births = {value for value in values if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)}
    assert births
    engine = create_engine(normalize_url(database_url))
    with engine.connect() as connection:
        payloads = [str(p) for p in connection.execute(text("SELECT payload FROM ledger_event")).scalars()]
    engine.dispose()
    assert not [v for v in values if any(v in payload for payload in payloads)], "a personal value is in the ledger"

    passwords = _passwords(demo.output)
    erase = [
        "subject",
        "erase",
        "--study",
        "HTN-201",
        "--subject",
        "0101-001",
        "--password-stdin",
        "--db",
        database_url,
    ]
    no_reason = runner.invoke(app, [*erase, "--as", "demo-data-manager"], input=passwords["demo-data-manager"] + "\n")
    assert no_reason.exit_code == 2 and "needs --reason" in no_reason.output
    coordinator = runner.invoke(
        app,
        [*erase, "--as", "demo-study-coordinator", "--reason", "asked"],
        input=passwords["demo-study-coordinator"] + "\n",
    )
    assert coordinator.exit_code == 2 and "may not personal_data.erase" in coordinator.output
    assert _vault_values(database_url) == values, "a refused erasure erased nothing"

    erased = runner.invoke(
        app,
        [*erase, "--as", "demo-data-manager", "--reason", "participant request"],
        input=passwords["demo-data-manager"] + "\n",
    )
    assert erased.exit_code == 0, erased.output
    assert "SCREENING.DM/BRTHDAT" in erased.output
    left = _vault_values(database_url)
    assert len(left & births) == len(births) - 1 and left < values
    verified = runner.invoke(app, ["verify", "--db", database_url])
    assert verified.exit_code == 0, verified.output
    out = tmp_path / "export.xml"
    exported = runner.invoke(
        app, ["export", "odm", "--study", "HTN-201", "--clinical-data", "--out", str(out), "--db", database_url]
    )
    assert exported.exit_code == 0, exported.output
    subject = out.read_text(encoding="utf-8").split('SubjectKey="0101-001"', 1)[1].split("</SubjectData>", 1)[0]
    birth = subject.split('ItemOID="I.BRTHDAT"', 1)[1].split("</ItemData>", 1)[0]
    assert 'Value="[erased]"' in birth
    assert not any(b in subject for b in births)


def test_the_server_does_not_start_with_a_wrong_vault_key(database_url: str) -> None:
    assert runner.invoke(app, ["demo", "--subjects", "2", "--seed", "1", "--db", database_url]).exit_code == 0
    environment = {**os.environ, KEY_ENV: new_master_key()}
    trialstack = str(Path(sys.executable).parent / "trialstack")
    command = [trialstack, "serve", "--db", database_url, "--port", str(free_port())]
    try:
        served = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("trialstack serve started although its vault master key is wrong")
    assert served.returncode == 2
    assert "is not the key this database's vault was created with" in served.stderr
    assert len(served.stderr.strip().splitlines()) == 1, served.stderr
