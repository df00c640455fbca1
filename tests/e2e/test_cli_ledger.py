"""The ledger commands as an operator runs them: init twice, tamper by raw SQL, verify names the break."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from trialstack.cli.main import app
from trialstack.ledger.database import normalize_url

runner = CliRunner()


def test_init_is_harmless_twice_and_verify_names_a_forged_row(database_url: str) -> None:
    first = runner.invoke(app, ["init", "--db", database_url])
    second = runner.invoke(app, ["init", "--db", database_url])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    clean = runner.invoke(app, ["verify", "--db", database_url])
    assert clean.exit_code == 0 and "ok: 0 events" in clean.output
    engine = create_engine(normalize_url(database_url))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ledger_event (study_id, study_seq, stream_type, stream_id, stream_version, event_type,"
                " schema_version, payload, actor_id, actor_role, occurred_at, recorded_at, prev_hash, hash)"
                " VALUES ('HTN-201', 1, 'subject', 'x', 1, 'Forged', 1, '{}', 'eve', 'admin',"
                " '2026-01-05T09:00:00.000000Z', '2026-01-05T09:00:00.000000Z', :g, :h)"
            ),
            {"g": "0" * 64, "h": "a" * 64},
        )
    engine.dispose()
    broken = runner.invoke(app, ["verify", "--db", database_url, "--study", "HTN-201"])
    assert broken.exit_code == 1
    assert "study HTN-201 at study_seq 1" in broken.output


def test_an_unreachable_database_is_one_clear_line() -> None:
    result = runner.invoke(app, ["verify", "--db", "postgresql://postgres@127.0.0.1:1/nowhere"])
    assert result.exit_code == 2
    assert "cannot reach database" in result.output
    assert "Traceback" not in result.output


def test_rebuild_prints_identical_checksums(database_url: str) -> None:
    assert runner.invoke(app, ["init", "--db", database_url]).exit_code == 0
    result = runner.invoke(app, ["rebuild", "--db", database_url])
    assert result.exit_code == 0, result.output
    lines = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
        for line in result.output.splitlines()
        if ":" in line
    }
    assert lines["checksum before"] == lines["checksum after"]
