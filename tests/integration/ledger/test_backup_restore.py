"""`trialstack backup` / `restore` on SQLite and PostgreSQL: a restored database verifies, rebuilds to the same
projections checksum, and holds every table of the original (the vault's too); bad input writes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from typer.testing import CliRunner

from tests.conftest import create_postgres_database, drop_postgres_database, postgres_url_for
from trialstack.bootstrap import bootstrap
from trialstack.cli.main import app
from trialstack.ledger import Actor, NewEvent
from trialstack.ledger import backup as backup_module
from trialstack.ledger.backup import MAGIC, BackupError, backup, read_manifest, restore
from trialstack.ledger.database import normalize_url
from trialstack.settings import Settings

runner = CliRunner()


@pytest.fixture
def target_url(second_database_url: str) -> str:
    """A second fresh, empty database on the same backend as `database_url`."""
    return second_database_url


@contextmanager
def other_backend_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    if database_url.startswith("sqlite"):
        name = create_postgres_database()
        try:
            yield postgres_url_for(name)
        finally:
            drop_postgres_database(name)
    else:
        yield f"sqlite:///{tmp_path / 'other-backend.db'}"


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def checksum_line(output: str, which: str) -> str:
    match = re.search(rf"checksum {which}:\s+(\w+)", output)
    assert match, output
    return match.group(1)


def engine_for(url: str) -> Engine:
    return create_engine(normalize_url(url))


def row_counts(url: str) -> dict[str, int]:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            names = inspect(connection).get_table_names()
            return {n: int(connection.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one()) for n in names}
    finally:
        engine.dispose()


def heads(url: str) -> list[tuple[str, int, str]]:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT study_id, last_seq, last_hash FROM study_head ORDER BY study_id"))
            return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]
    finally:
        engine.dispose()


def append_one(url: str, study: str = "OTHER") -> None:
    platform = bootstrap(Settings(database_url=url), migrate=True)
    try:
        with platform.unit_of_work(Actor("user:bob", "data_manager")) as uow:
            uow.append(study, "subject", f"{study}/1", [NewEvent("ValueNoted", {"item": "X"})], expected_version=0)
            uow.commit()
    finally:
        platform.close()


def test_a_restored_database_verifies_and_rebuilds_to_the_same_checksum(
    database_url: str, target_url: str, tmp_path: Path
) -> None:
    invoke("demo", "--subjects", "3", "--seed", "5", "--db", database_url)
    before = checksum_line(invoke("rebuild", "--db", database_url), "after")
    source_counts = row_counts(database_url)
    assert any(name.startswith("vault_") and count for name, count in source_counts.items())
    verified = re.search(r"ok: (\d+) events in (\d+) studies", invoke("verify", "--db", database_url))
    assert verified

    out = tmp_path / "trialstack.backup"
    written = invoke("backup", "--db", database_url, "--out", str(out))
    assert f"{verified.group(1)} events" in written
    manifest = read_manifest(out)
    assert manifest.backend == normalize_url(database_url).get_backend_name()
    assert [(h.study_id, h.last_seq, h.last_hash) for h in manifest.studies] == heads(database_url)

    invoke("restore", str(out), "--db", target_url)
    assert row_counts(target_url) == source_counts  # the whole database, vault tables included
    assert heads(target_url) == heads(database_url)
    assert f"ok: {verified.group(1)} events in {verified.group(2)} studies" in invoke("verify", "--db", target_url)
    rebuilt = invoke("rebuild", "--db", target_url)
    assert checksum_line(rebuilt, "before") == before
    assert checksum_line(rebuilt, "after") == before


def test_restore_refuses_a_database_that_is_not_empty_unless_forced(
    database_url: str, target_url: str, tmp_path: Path
) -> None:
    append_one(database_url, "S1")
    out = tmp_path / "s1.backup"
    backup(database_url, out)
    append_one(target_url, "OTHER")
    target_before = row_counts(target_url)

    refused = runner.invoke(app, ["restore", str(out), "--db", target_url])
    assert refused.exit_code == 2
    assert "is not empty" in refused.output and "--force" in refused.output
    assert "Traceback" not in refused.output
    assert row_counts(target_url) == target_before and heads(target_url)[0][0] == "OTHER"

    invoke("restore", str(out), "--db", target_url, "--force")
    assert heads(target_url) == heads(database_url)
    assert "ok: 1 events in 1 studies" in invoke("verify", "--db", target_url)


def test_a_backup_cannot_be_restored_into_the_other_backend(database_url: str, tmp_path: Path) -> None:
    append_one(database_url)
    out = tmp_path / "one.backup"
    backup(database_url, out)
    with other_backend_url(database_url, tmp_path) as other:
        result = runner.invoke(app, ["restore", str(out), "--db", other])
        assert result.exit_code == 2
        assert "backup and cannot be restored into a" in result.output
        if other.startswith("sqlite"):
            assert not Path(other.removeprefix("sqlite:///")).exists()
        else:
            assert row_counts(other) == {}


def test_a_damaged_or_foreign_file_is_refused_and_nothing_is_written(
    database_url: str, target_url: str, tmp_path: Path
) -> None:
    append_one(database_url)
    good = tmp_path / "good.backup"
    backup(database_url, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(data[:-100])
    flipped = tmp_path / "flipped.backup"
    flipped.write_bytes(data[:-10] + bytes([data[-10] ^ 1]) + data[-9:])
    not_backup = tmp_path / "notes.txt"
    not_backup.write_text("hello\n")
    bad_manifest = tmp_path / "bad-manifest.backup"
    bad_manifest.write_bytes(MAGIC + b"{not json\n" + b"x")
    cases = {
        truncated: "is damaged",
        flipped: "is damaged",
        not_backup: "is not a TrialStack backup",
        bad_manifest: "manifest is damaged",
        tmp_path / "missing.backup": "no backup file at",
    }
    if database_url.startswith("sqlite"):
        cases[Path(normalize_url(database_url).database or "")] = "bare SQLite database"
    for path, message in cases.items():
        with pytest.raises(BackupError, match=message):
            restore(path, target_url)
        if target_url.startswith("sqlite"):
            assert not Path(target_url.removeprefix("sqlite:///")).exists()
        else:
            assert row_counts(target_url) == {}


def test_backup_refuses_bad_output_and_missing_databases(database_url: str, tmp_path: Path) -> None:
    append_one(database_url)
    out = tmp_path / "twice.backup"
    backup(database_url, out)
    first = out.read_bytes()
    with pytest.raises(BackupError, match="already exists"):
        backup(database_url, out)
    assert out.read_bytes() == first
    with pytest.raises(BackupError, match="does not exist"):
        backup(database_url, tmp_path / "no" / "such" / "dir.backup")
    backup(database_url, out, force=True)
    assert read_manifest(out).studies == read_manifest(tmp_path / "twice.backup").studies
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch files left
    if database_url.startswith("sqlite"):
        database = Path(normalize_url(database_url).database or "")
        with pytest.raises(BackupError, match="is the database itself"):
            backup(database_url, database, force=True)
        with pytest.raises(BackupError, match="no database at"):
            backup(f"sqlite:///{tmp_path / 'absent.db'}", tmp_path / "absent.backup")
        assert not (tmp_path / "absent.db").exists()


def test_without_pg_dump_a_postgresql_backup_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(backup_module, "PG_BIN_GLOB", str(tmp_path / "no-postgresql" / "*" / "bin"))
    result = runner.invoke(
        app, ["backup", "--db", "postgresql://postgres@127.0.0.1:5432/postgres", "--out", str(tmp_path / "x.backup")]
    )
    assert result.exit_code == 2
    assert "pg_dump was not found on PATH" in result.output
    assert not (tmp_path / "x.backup").exists()
    with pytest.raises(BackupError, match="pg_restore was not found"):
        backup_module.find_pg_tool("pg_restore")


def test_the_newest_installed_pg_tool_is_chosen_when_none_is_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("9.6", "13", "16"):
        tool = tmp_path / "postgresql" / version / "bin" / "pg_dump"
        tool.parent.mkdir(parents=True)
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(backup_module, "PG_BIN_GLOB", str(tmp_path / "postgresql" / "*" / "bin"))
    assert backup_module.find_pg_tool("pg_dump") == str(tmp_path / "postgresql" / "16" / "bin" / "pg_dump")
