"""Durable by default: an acknowledged command survives power loss on both backends (DESIGN.md §2)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine

from trialstack.ledger.database import make_engine


def test_a_fresh_sqlite_engine_uses_wal_with_synchronous_full(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'durable.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        with engine.connect() as other:  # every pooled connection, not only the first, is configured
            assert other.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        engine.dispose()


def test_every_engine_of_the_platform_is_durable(engine: Engine) -> None:
    """The platform's own engine, on SQLite and on PostgreSQL (synchronous_commit stays on)."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            assert connection.exec_driver_sql("SHOW fsync").scalar() == "on"
        else:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_no_code_weakens_durability() -> None:
    """No module or benchmark lowers SQLite's synchronous level or turns PostgreSQL's synchronous_commit off."""
    root = Path(__file__).resolve().parents[3]
    weakening = re.compile(
        r"PRAGMA\s+synchronous\s*=\s*(?!(full|extra|2|3)\b)\w+|synchronous_commit\s*(=|to)\s*'?(off|local)\b|fsync\s*=\s*'?off\b",
        re.IGNORECASE,
    )
    offenders = [
        f"{path.relative_to(root)}:{number}: {text.strip()}"
        for folder in ("src", "benchmarks", "scripts")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file() and path.suffix in {".py", ".sql", ".ini", ".sh", ""}
        for number, text in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if weakening.search(text)
    ]
    assert offenders == []
