"""`trialstack bench ledger`: the hash-chained append, verify and rebuild against raw baselines, per backend.

Baselines, measured in the same run on the same database, through the same engine (so with the same durability:
SQLite WAL + synchronous=FULL, PostgreSQL synchronous_commit=on; checked and printed first):
- append vs a raw DBAPI executemany INSERT of the very same rows into an identical table without triggers
  (batched in one transaction, and one INSERT + COMMIT per row);
- verify (in-process, and with its process pool) vs the physical limit of one reader: a bare SELECT of the same
  rows off the driver cursor plus SHA-256 over each row's stored values (target ≥ 0.8×), in rows per second of
  wall clock and in rows per CPU-second (this process and its children; the database server's CPU is not
  counted on either side), since on a busy machine the wall clock mostly says how much CPU was free;
- rebuild reported in events/s (target ≥ 100k/s on SQLite).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from benchmarks.common import Emit, durability, line, rate, scratch_postgres, scratch_sqlite, timed, timed_with_cpu
from trialstack.bootstrap import Platform, bootstrap
from trialstack.clock import FixedClock
from trialstack.ledger import Actor, NewEvent, store
from trialstack.ledger.projections import rebuild
from trialstack.ledger.schema import LEDGER_COLUMNS
from trialstack.ledger.store import select_events_sql
from trialstack.ledger.verify import verify
from trialstack.settings import Settings

ACTOR = Actor(id="user:bench", role="study_coordinator")
BATCH = 1_000


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


def select_and_hash(connection: Connection, studies: list[str]) -> int:
    """The same rows verify reads (same SELECT, same order, a server-side cursor on PostgreSQL), each hashed once.

    SHA-256 goes over each row's stored values as bytes (one orjson call per row tuple): what any checker must at
    least do. Returns the rows read.
    """
    driver: Any = connection.connection.driver_connection
    sql = select_events_sql(connection, "study_id = {p}", "study_seq")
    sha, dumps, count = hashlib.sha256, orjson.dumps, 0
    for study in studies:
        postgres = connection.dialect.name == "postgresql"
        cursor = driver.cursor(name=f"bench_{study}") if postgres else driver.cursor()
        if postgres:
            cursor.itersize = 10_000
        cursor.execute(sql, (study,))
        while batch := cursor.fetchmany(10_000):
            for row in batch:
                sha(dumps(row)).digest()
            count += len(batch)
        cursor.close()
        if postgres:
            driver.rollback()
    return count


def bench_backend(label: str, scratch: AbstractContextManager[str], events: int, emit: Emit) -> None:
    singles = max(200, events // 25)
    with scratch as url:
        platform = bootstrap(
            Settings(database_url=url), clock=FixedClock(datetime(2026, 1, 5, tzinfo=UTC)), migrate=True
        )
        with platform.engine.connect() as connection:
            emit(f"{label} durability (every figure and baseline): {durability(connection)}")
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
        processes = os.cpu_count() or 1
        read, alone, pooled = [float("inf")] * 2, [float("inf")] * 2, [float("inf")] * 2
        with platform.engine.connect() as connection:  # each figure: the best of three runs, interleaved
            for _ in range(3):
                for best, function in (
                    (read, lambda: select_and_hash(connection, ["BENCH", "BENCH1"])),
                    (alone, lambda: verify(connection, workers=1)),
                    (pooled, lambda: verify(connection)),
                ):
                    best[:] = map(min, best, timed_with_cpu(function))
        emit(line(f"{label} select + sha256 of the stored rows", rate(total, read[0]), "rows/s"))
        for name, (wall, _) in (("in-process", alone), (f"{processes} processes (default)", pooled)):
            emit(line(f"{label} verify {name}", rate(total, wall), "rows/s", rate(total, read[0]), "select+sha256"))
        for name, (_, cpu) in (("in-process", alone), (f"{processes} processes", pooled)):
            emit(
                line(
                    f"{label} verify {name}, CPU cost",
                    rate(total, cpu),
                    "rows/CPU-s",
                    rate(total, read[1]),
                    "select+sha256",
                )
            )

        rebuild_seconds = timed(lambda: rebuild(platform.engine, platform.wiring))
        emit(line(f"{label} rebuild", rate(total, rebuild_seconds), "events/s", 100_000, "target 100k/s"))
        platform.close()


def run(events: int = 50_000, postgres_server: str | None = None, emit: Emit = print) -> None:
    with tempfile.TemporaryDirectory() as directory:
        bench_backend("sqlite", scratch_sqlite(Path(directory)), events, emit)
    if postgres_server:
        bench_backend("postgresql", scratch_postgres(postgres_server), events, emit)
