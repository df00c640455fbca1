"""`trialstack bench ledger`: the hash-chained append, verify and rebuild against raw baselines, per backend.

Baselines, measured in the same run on the same database:
- append vs a raw DBAPI executemany INSERT of the very same rows into an identical table without triggers
  (batched in one transaction, and one INSERT + COMMIT per row);
- verify vs hashlib SHA-256 over the same envelope bytes, already in memory;
- rebuild reported in events/s (target ≥ 100k/s on SQLite).
"""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from benchmarks.common import Emit, line, rate, scratch_postgres, scratch_sqlite, timed
from trialstack.bootstrap import Platform, bootstrap
from trialstack.clock import FixedClock
from trialstack.ledger import Actor, NewEvent, store
from trialstack.ledger.chain import envelope_bytes
from trialstack.ledger.projections import rebuild
from trialstack.ledger.schema import LEDGER_COLUMNS
from trialstack.ledger.verify import verify
from trialstack.settings import Settings

ACTOR = Actor(id="user:bench", role="study_coordinator")
BATCH = 1_000
ENVELOPE_FIELDS = [c if c != "payload" else "payload_json" for c in LEDGER_COLUMNS if c not in ("id", "hash")]


def sample_events(count: int) -> list[NewEvent]:
    """Item entries shaped like real EDC saves: item, value, visit, form, unit, status."""
    return [
        NewEvent(
            "ValueNoted",
            {
                "subject": f"0101-{n // 20:04d}",
                "visit": "WEEK4",
                "form": "VS",
                "item": f"ITEM{n % 20:02d}",
                "value": str(100 + n % 97),
                "unit": "mmHg",
                "study_version": "a" * 64,
            },
        )
        for n in range(count)
    ]


def append_batched(platform: Platform, events: list[NewEvent], study: str) -> None:
    with platform.unit_of_work(ACTOR) as uow:
        for start in range(0, len(events), BATCH):
            stream = f"{study}/{start // BATCH:06d}"
            uow.append(study, "subject", stream, events[start : start + BATCH], expected_version=0)
        uow.commit()


def append_one_per_transaction(platform: Platform, events: list[NewEvent], study: str) -> None:
    for n, event in enumerate(events):
        with platform.unit_of_work(ACTOR) as uow:
            uow.append(study, "subject", f"{study}/single", [event], expected_version=n)
            uow.commit()


def raw_rows(engine: Engine, study: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(getattr(e, c if c != "payload" else "payload_json") for c in LEDGER_COLUMNS if c != "id")
            for e in store.iter_study(connection, study)
        ]


def prepare_raw_table(engine: Engine) -> str:
    """An identical table without triggers or projections, for the raw INSERT baseline."""
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bench_raw"))
        if engine.dialect.name == "postgresql":
            connection.execute(text("CREATE TABLE bench_raw (LIKE ledger_event INCLUDING ALL)"))
        else:
            ddl = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ledger_event'")).scalar_one()
            connection.execute(
                text(ddl.replace("ledger_event", "bench_raw", 1).replace("CONSTRAINT uq_", "CONSTRAINT bq_"))
            )
    columns = [c for c in LEDGER_COLUMNS if c != "id"]
    marker = "%s" if engine.dialect.name == "postgresql" else "?"
    return f"INSERT INTO bench_raw ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"


def raw_insert_batched(engine: Engine, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM bench_raw")
    with engine.begin() as connection:
        connection.exec_driver_sql(statement, rows)


def raw_insert_one_per_transaction(engine: Engine, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM bench_raw")
    for row in rows:
        with engine.begin() as connection:
            connection.exec_driver_sql(statement, row)


def envelopes_in_memory(engine: Engine, study: str) -> list[tuple[str, bytes]]:
    with engine.connect() as connection:
        return [
            (e.prev_hash, envelope_bytes(**{f: getattr(e, f) for f in ENVELOPE_FIELDS}))
            for e in store.iter_study(connection, study)
        ]


def hash_in_memory(envelopes: list[tuple[str, bytes]]) -> None:
    sha = hashlib.sha256
    for prev, envelope in envelopes:
        sha(prev.encode("ascii") + envelope).hexdigest()


def bench_backend(label: str, scratch: AbstractContextManager[str], events: int, emit: Emit) -> None:
    singles = max(200, events // 25)
    with scratch as url:
        platform = bootstrap(
            Settings(database_url=url), clock=FixedClock(datetime(2026, 1, 5, tzinfo=UTC)), migrate=True
        )
        batch = sample_events(events)
        append_seconds = timed(lambda: append_batched(platform, batch, "BENCH"))
        rows = raw_rows(platform.engine, "BENCH")
        statement = prepare_raw_table(platform.engine)
        raw_seconds = timed(lambda: raw_insert_batched(platform.engine, statement, rows))
        emit(line(f"{label} raw insert batched", rate(events, raw_seconds), "rows/s"))
        emit(
            line(
                f"{label} append batched",
                rate(events, append_seconds),
                "events/s",
                rate(events, raw_seconds),
                "raw batched",
            )
        )

        single_seconds = timed(lambda: append_one_per_transaction(platform, batch[:singles], "BENCH1"))
        raw_single_seconds = timed(lambda: raw_insert_one_per_transaction(platform.engine, statement, rows[:singles]))
        emit(line(f"{label} raw insert+commit per row", rate(singles, raw_single_seconds), "rows/s"))
        emit(
            line(
                f"{label} append one per transaction",
                rate(singles, single_seconds),
                "events/s",
                rate(singles, raw_single_seconds),
                "raw per row",
            )
        )

        total = events + singles
        with platform.engine.connect() as connection:
            verify_seconds = timed(lambda: verify(connection))
        envelopes = envelopes_in_memory(platform.engine, "BENCH") + envelopes_in_memory(platform.engine, "BENCH1")
        hash_seconds = timed(lambda: hash_in_memory(envelopes))
        emit(line(f"{label} hashlib sha256 in memory", rate(total, hash_seconds), "rows/s"))
        emit(line(f"{label} verify", rate(total, verify_seconds), "rows/s", rate(total, hash_seconds), "hashlib"))

        rebuild_seconds = timed(lambda: rebuild(platform.engine, platform.wiring))
        emit(line(f"{label} rebuild", rate(total, rebuild_seconds), "events/s", 100_000, "target 100k/s"))
        platform.close()


def run(events: int = 50_000, postgres_server: str | None = None, emit: Emit = print) -> None:
    with tempfile.TemporaryDirectory() as directory:
        bench_backend("sqlite", scratch_sqlite(Path(directory)), events, emit)
    if postgres_server:
        bench_backend("postgresql", scratch_postgres(postgres_server), events, emit)
