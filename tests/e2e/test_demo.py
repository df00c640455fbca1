"""`trialstack demo` simulates through the real handlers: deterministic per seed, verifiable, on both backends."""

from __future__ import annotations

import re

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from trialstack.cli.main import app
from trialstack.ledger.database import normalize_url

runner = CliRunner()


def checksum(output: str) -> str:
    match = re.search(r"projections checksum: ([0-9a-f]{64})", output)
    assert match is not None, output
    return match.group(1)


def test_two_demo_runs_with_one_seed_give_identical_read_models(database_url: str, second_database_url: str) -> None:
    first = runner.invoke(app, ["demo", "--subjects", "15", "--seed", "11", "--db", database_url])
    second = runner.invoke(app, ["demo", "--subjects", "15", "--seed", "11", "--db", second_database_url])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert checksum(first.output) == checksum(second.output)
    other_seed = runner.invoke(
        app, ["demo", "--subjects", "15", "--seed", "12", "--db", second_database_url, "--fresh"]
    )
    if database_url.startswith("sqlite"):
        assert other_seed.exit_code == 0 and checksum(other_seed.output) != checksum(first.output)
    else:
        assert other_seed.exit_code == 2 and "--fresh only removes an SQLite database file" in other_seed.output

    verified = runner.invoke(app, ["verify", "--db", database_url])
    assert verified.exit_code == 0 and "2 studies verified" in verified.output  # HTN-201 and the _platform chain
    engine = create_engine(normalize_url(database_url))
    with engine.connect() as connection:
        subjects = connection.execute(text("SELECT count(*) FROM rm_subject")).scalar_one()
        opened_by_checks = connection.execute(
            text("SELECT count(*) FROM ledger_event WHERE event_type = 'QueryOpened' AND actor_id = 'system:rules'")
        ).scalar_one()
        closed_by_corrections = connection.execute(
            text("SELECT count(*) FROM ledger_event WHERE event_type = 'QueryClosed' AND actor_id = 'system:rules'")
        ).scalar_one()
    engine.dispose()
    assert subjects == 15
    assert opened_by_checks > 0 and closed_by_corrections > 0
    again = runner.invoke(app, ["demo", "--subjects", "15", "--seed", "11", "--db", database_url])
    assert again.exit_code == 2 and "already holds HTN-201 subjects" in again.output
