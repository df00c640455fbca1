"""Projection tables: created on init, dropped and replayed by rebuild, proven identical by a checksum."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.schema import CreateTable

from trialstack.ledger import store
from trialstack.ledger.schema import projection_state
from trialstack.ledger.wiring import LedgerWiring, Projection, relevant_events

Progress = Callable[[int], None]


def fingerprint(projection: Projection, dialect_engine: Engine) -> str:
    """A hash of a projection's DDL: when it changes, the stored read model is stale and must be rebuilt."""
    ddl = "\n".join(str(CreateTable(t).compile(dialect_engine)) for t in projection.tables)
    return hashlib.sha256(ddl.encode()).hexdigest()


def _tables(wiring: LedgerWiring) -> list[Table]:
    return [table for projection in wiring.projections for table in projection.tables]


def ensure_projections(engine: Engine, wiring: LedgerWiring, progress: Progress | None = None) -> bool:
    """Create missing projection tables; rebuild all when any projection's shape changed. True if rebuilt."""
    with engine.begin() as connection:
        stored = {row.name: row.fingerprint for row in connection.execute(select(projection_state))}
    wanted = {p.name: fingerprint(p, engine) for p in wiring.projections}
    if stored == wanted:
        with engine.begin() as connection:
            for table in _tables(wiring):
                table.create(connection, checkfirst=True)
        return False
    rebuild(engine, wiring, progress)
    return True


def rebuild(engine: Engine, wiring: LedgerWiring, progress: Progress | None = None, page_size: int = 5_000) -> int:
    """Drop every read model and replay the whole ledger into it, in one transaction. Returns events replayed."""
    replayed = 0
    with engine.begin() as connection:
        tables = _tables(wiring)
        for table in reversed(tables):
            table.drop(connection, checkfirst=True)
        for table in tables:
            table.create(connection)
        for page in store.iter_all(connection, page_size=page_size):
            for projection in wiring.projections:
                relevant = relevant_events(projection, page)
                if relevant:
                    projection.apply(connection, relevant)
            replayed += len(page)
            if progress is not None:
                progress(len(page))
        connection.execute(projection_state.delete())
        rows = [{"name": p.name, "fingerprint": fingerprint(p, engine)} for p in wiring.projections]
        if rows:
            connection.execute(projection_state.insert(), rows)
    return replayed


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | Decimal):
        return str(value)
    return value


def checksum(connection: Connection, tables: Sequence[Table]) -> str:
    """SHA-256 over every projection row, tables by name, rows in primary-key order."""
    digest = hashlib.sha256()
    for table in sorted(tables, key=lambda t: t.name):
        digest.update(f"\x00{table.name}\x00".encode())
        order = list(table.primary_key.columns) or list(table.columns)
        for row in connection.execute(select(table).order_by(*order)):
            digest.update(orjson.dumps([_plain(v) for v in row]))
            digest.update(b"\n")
    return digest.hexdigest()


def projections_checksum(engine: Engine, wiring: LedgerWiring) -> str:
    with engine.connect() as connection:
        return checksum(connection, _tables(wiring))
