"""Reading and writing `ledger_event` on an open connection (SQLAlchemy Core, both backends)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from trialstack.ledger.chain import GENESIS_HASH
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.schema import ledger_event, study_head

_COLUMNS = list(ledger_event.c)
PAGE_SIZE = 5_000


def to_event(row: Sequence[Any]) -> RecordedEvent:
    """Build a RecordedEvent from a row selected with all ledger columns in table order."""
    return RecordedEvent(*row)


def lock_study_head(connection: Connection, study_id: str) -> tuple[int, str]:
    """Lock the study's head row (creating it at the genesis) and return (last_seq, last_hash).

    On PostgreSQL the row lock (`FOR UPDATE`) serializes appends to one study; on SQLite the transaction already
    holds the database write lock from `BEGIN IMMEDIATE`.
    """
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        dialect_insert(study_head)
        .values(study_id=study_id, last_seq=0, last_hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["study_id"])
    )
    row = connection.execute(
        select(study_head.c.last_seq, study_head.c.last_hash)
        .where(study_head.c.study_id == study_id)
        .with_for_update()
    ).one()
    return int(row[0]), str(row[1])


def write_study_head(connection: Connection, study_id: str, last_seq: int, last_hash: str) -> None:
    connection.execute(
        study_head.update()
        .where(study_head.c.study_id == study_id)
        .values(last_seq=last_seq, last_hash=last_hash)
    )


def current_stream_version(connection: Connection, stream_type: str, stream_id: str) -> int:
    version = connection.execute(
        select(func.max(ledger_event.c.stream_version)).where(
            ledger_event.c.stream_type == stream_type, ledger_event.c.stream_id == stream_id
        )
    ).scalar()
    return int(version or 0)


def find_by_external_id(connection: Connection, source: str, external_id: str) -> RecordedEvent | None:
    row = connection.execute(
        select(*_COLUMNS).where(ledger_event.c.source == source, ledger_event.c.external_id == external_id)
    ).first()
    return to_event(row) if row is not None else None


def insert_events(connection: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(ledger_event.insert(), rows)


def read_stream(
    connection: Connection, stream_type: str, stream_id: str, after_version: int = 0
) -> list[RecordedEvent]:
    """Every event of one stream (an aggregate), in version order."""
    rows = connection.execute(
        select(*_COLUMNS)
        .where(
            ledger_event.c.stream_type == stream_type,
            ledger_event.c.stream_id == stream_id,
            ledger_event.c.stream_version > after_version,
        )
        .order_by(ledger_event.c.stream_version)
    )
    return [to_event(row) for row in rows]


def read_study(
    connection: Connection, study_id: str, after_seq: int = 0, limit: int = PAGE_SIZE
) -> list[RecordedEvent]:
    """One page of a study's events after `after_seq`, in study order."""
    rows = connection.execute(
        select(*_COLUMNS)
        .where(ledger_event.c.study_id == study_id, ledger_event.c.study_seq > after_seq)
        .order_by(ledger_event.c.study_seq)
        .limit(limit)
    )
    return [to_event(row) for row in rows]


def iter_study(connection: Connection, study_id: str, page_size: int = PAGE_SIZE) -> Iterator[RecordedEvent]:
    after = 0
    while page := read_study(connection, study_id, after, page_size):
        yield from page
        after = page[-1].study_seq


def iter_all(connection: Connection, after_id: int = 0, page_size: int = PAGE_SIZE) -> Iterator[list[RecordedEvent]]:
    """Every event of every study in commit order (by row id), page by page (keyset paging, flat memory)."""
    while True:
        page = [
            to_event(row)
            for row in connection.execute(
                select(*_COLUMNS).where(ledger_event.c.id > after_id).order_by(ledger_event.c.id).limit(page_size)
            )
        ]
        if not page:
            return
        yield page
        after_id = int(page[-1].id or 0)


def study_ids(connection: Connection) -> list[str]:
    return [str(r[0]) for r in connection.execute(select(study_head.c.study_id).order_by(study_head.c.study_id))]


def count_events(connection: Connection, study_id: str | None = None) -> int:
    statement = select(func.count()).select_from(ledger_event)
    if study_id is not None:
        statement = statement.where(ledger_event.c.study_id == study_id)
    return int(connection.execute(statement).scalar_one())
