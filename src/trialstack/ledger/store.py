"""Reading and writing `ledger_event` on an open connection (SQLAlchemy Core, both backends).

The statements of a command's save path run on the driver's own cursor (`_fetch`, `_write`, `read_many`), in the
connection's transaction: SQLAlchemy's statement and result layers cost more than the statements themselves.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.exc import IntegrityError

from trialstack.ledger.chain import GENESIS_HASH
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.schema import ledger_event, study_head

_COLUMNS = list(ledger_event.c)
PAGE_SIZE = 5_000
COPY_THRESHOLD = 64
_INSERT_COLUMNS = [c.name for c in ledger_event.c if c.name != "id"]


def _column_sql(dialect: str) -> str:
    """All ledger columns in table order; PostgreSQL formats its timestamptz columns as the ledger's UTC text."""
    if dialect != "postgresql":
        return ", ".join(c.name for c in ledger_event.c)
    utc_text = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    return ", ".join(
        utc_text.format(c.name) if c.name in ("occurred_at", "recorded_at") else c.name for c in ledger_event.c
    )


def _marker(connection: Connection) -> str:
    return "%s" if connection.dialect.name == "postgresql" else "?"


def select_events_sql(connection: Connection, where: str, order: str, limit: bool = False) -> str:
    """A driver-level SELECT of whole ledger rows: the hot read paths skip SQLAlchemy's row processing.

    `where` and `order` are fixed SQL fragments written in this package with `{p}` for each parameter marker.
    """
    sql = f"SELECT {_column_sql(connection.dialect.name)} FROM ledger_event WHERE {where} ORDER BY {order}"
    if limit:
        sql += " LIMIT {p}"
    return sql.format(p=_marker(connection))


def _fetch(
    connection: Connection, sql: str, parameters: Sequence[Any], *, prepare: bool | None = None
) -> list[tuple[Any, ...]]:
    """Rows of one SELECT on the driver's own cursor: the save path's statements skip SQLAlchemy's result layer.

    Inside a `pipelined` block (PostgreSQL) it sends what is queued and waits for its rows. `prepare=False` keeps
    psycopg from turning the statement into a prepared one (see `read_many`).
    """
    driver_connection: Any = connection.connection.driver_connection
    cursor = driver_connection.cursor()
    try:
        if connection.dialect.name == "postgresql":
            cursor.execute(sql, tuple(parameters), prepare=prepare)
        else:
            cursor.execute(sql, tuple(parameters))
        pipeline = connection.info.get(_PIPELINE)
        if pipeline is not None:
            pipeline.sync()
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def _write(connection: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One INSERT, UPDATE or DELETE per row on the driver's own cursor (queued inside a `pipelined` block)."""
    driver_connection: Any = connection.connection.driver_connection
    cursor = driver_connection.cursor()
    try:
        if len(rows) == 1:
            cursor.execute(sql, tuple(rows[0]))
        else:
            cursor.executemany(sql, [tuple(row) for row in rows])
    finally:
        cursor.close()


def write(connection: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """`_write` for read models of the ledger package (rowfold, the stream index): driver-level, maybe pipelined."""
    if rows:
        _write(connection, sql, rows)


def to_event(row: Sequence[Any]) -> RecordedEvent:
    """Build a RecordedEvent from a row selected with all ledger columns in table order."""
    return RecordedEvent(*row)


def lock_study_head(connection: Connection, study_id: str) -> tuple[int, str]:
    """Lock the study's head row (creating it at the genesis) and return (last_seq, last_hash).

    On PostgreSQL the row lock (`FOR UPDATE`) serializes appends to one study; on SQLite the transaction already
    holds the database write lock from `BEGIN IMMEDIATE`. One round trip in the common case (the row exists).
    """
    marker = _marker(connection)
    lock = " FOR UPDATE" if connection.dialect.name == "postgresql" else ""
    sql = f"SELECT last_seq, last_hash FROM study_head WHERE study_id = {marker}{lock}"
    rows = _fetch(connection, sql, (study_id,))
    if not rows:
        _write(
            connection,
            f"INSERT INTO study_head (study_id, last_seq, last_hash) VALUES ({marker}, 0, {marker})"
            " ON CONFLICT (study_id) DO NOTHING",
            [(study_id, GENESIS_HASH)],
        )
        rows = _fetch(connection, sql, (study_id,))
    (row,) = rows
    return int(row[0]), str(row[1])


def write_study_head(connection: Connection, study_id: str, last_seq: int, last_hash: str) -> None:
    marker = _marker(connection)
    _write(
        connection,
        f"UPDATE study_head SET last_seq = {marker}, last_hash = {marker} WHERE study_id = {marker}",
        [(last_seq, last_hash, study_id)],
    )


STREAM_VERSION_CONSTRAINT = "uq_ledger_event_stream_version"


def is_stream_version_conflict(error: Exception) -> bool:
    """Whether an INSERT into the ledger failed because the stream already holds one of its versions.

    `error` is the driver's IntegrityError or SQLAlchemy's wrapping of it; PostgreSQL names the constraint, SQLite
    its columns.
    """
    original = error.orig if isinstance(error, IntegrityError) else error
    diagnostic = getattr(original, "diag", None)
    if diagnostic is not None:
        return getattr(diagnostic, "constraint_name", None) == STREAM_VERSION_CONSTRAINT
    return "ledger_event.stream_type, ledger_event.stream_id, ledger_event.stream_version" in str(original)


def current_stream_version(connection: Connection, stream_type: str, stream_id: str) -> int:
    marker = _marker(connection)
    ((version,),) = _fetch(
        connection,
        f"SELECT max(stream_version) FROM ledger_event WHERE stream_type = {marker} AND stream_id = {marker}",
        (stream_type, stream_id),
    )
    return int(version or 0)


def find_by_external_id(connection: Connection, source: str, external_id: str) -> RecordedEvent | None:
    row = connection.execute(
        select(*_COLUMNS).where(ledger_event.c.source == source, ledger_event.c.external_id == external_id)
    ).first()
    return to_event(row) if row is not None else None


def find_by_external_ids(
    connection: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], RecordedEvent]:
    """The stored events of these `(source, external_id)` keys: one indexed SELECT per source and 500 ids."""
    by_source: dict[str, list[str]] = {}
    for source, external_id in keys:
        by_source.setdefault(source, []).append(external_id)
    found: dict[tuple[str, str], RecordedEvent] = {}
    for source, ids in by_source.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            where = "source = {p} AND external_id IN (" + ", ".join(["{p}"] * len(chunk)) + ")"
            for row in _fetch(connection, select_events_sql(connection, where, "id"), [source, *chunk], prepare=False):
                event = to_event(row)
                found[(source, event.external_id or "")] = event
    return found


def insert_events(connection: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows given as tuples in table order without `id` (a driver-level executemany: the hot write path)."""
    if len(rows) >= COPY_THRESHOLD and connection.dialect.name == "postgresql" and _PIPELINE not in connection.info:
        _copy_events(connection, rows)
    elif rows:
        markers = ", ".join([_marker(connection)] * len(_INSERT_COLUMNS))
        _write(connection, f"INSERT INTO ledger_event ({', '.join(_INSERT_COLUMNS)}) VALUES ({markers})", rows)


def _copy_events(connection: Connection, rows: list[tuple[Any, ...]]) -> None:
    """COPY is PostgreSQL's bulk path; it runs on the same connection, inside the same transaction."""
    driver_connection: Any = connection.connection.driver_connection
    with (
        driver_connection.cursor() as cursor,
        cursor.copy(f"COPY ledger_event ({', '.join(_INSERT_COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def read_stream(
    connection: Connection, stream_type: str, stream_id: str, after_version: int = 0
) -> list[RecordedEvent]:
    """Every event of one stream (an aggregate), in version order."""
    sql = select_events_sql(
        connection, "stream_type = {p} AND stream_id = {p} AND stream_version > {p}", "stream_version"
    )
    return [to_event(row) for row in connection.exec_driver_sql(sql, (stream_type, stream_id, after_version))]


def read_study(
    connection: Connection, study_id: str, after_seq: int = 0, limit: int = PAGE_SIZE
) -> list[RecordedEvent]:
    """One page of a study's events after `after_seq`, in study order."""
    sql = select_events_sql(connection, "study_id = {p} AND study_seq > {p}", "study_seq", limit=True)
    return [to_event(row) for row in connection.exec_driver_sql(sql, (study_id, after_seq, limit))]


def iter_study(connection: Connection, study_id: str, page_size: int = PAGE_SIZE) -> Iterator[RecordedEvent]:
    after = 0
    while page := read_study(connection, study_id, after, page_size):
        yield from page
        after = page[-1].study_seq


def iter_all(connection: Connection, after_id: int = 0, page_size: int = PAGE_SIZE) -> Iterator[list[RecordedEvent]]:
    """Every event of every study in commit order (by row id), page by page (keyset paging, flat memory)."""
    sql = select_events_sql(connection, "id > {p}", "id", limit=True)
    while True:
        page = [to_event(row) for row in connection.exec_driver_sql(sql, (after_id, page_size))]
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


_PIPELINE = "trialstack_pipeline"
_SYNCING_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


@contextmanager
def pipelined(connection: Connection) -> Iterator[None]:
    """On PostgreSQL, send the block's writes without waiting for each one's answer (libpq pipeline mode).

    INSERT, UPDATE and DELETE statements are queued; any other statement (a read) sends the queue and waits for
    its own rows, and leaving the block sends the rest: a batch of writes, and the COMMIT after them (`commit`),
    cost one round trip instead of one each. An error in a queued write surfaces at the next exchange, still
    inside the transaction, which then fails as a whole. On SQLite, which has no round trips, this does nothing.
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    engine = connection.engine
    if engine not in _SYNCING_ENGINES:
        event.listen(engine, "after_cursor_execute", _wait_for_reads)
        _SYNCING_ENGINES.add(engine)
    driver_connection: Any = connection.connection.driver_connection
    with driver_connection.pipeline() as pipeline:
        connection.info[_PIPELINE] = pipeline
        try:
            yield
        finally:
            del connection.info[_PIPELINE]


def commit(connection: Connection) -> None:
    """Commit the connection's transaction. Inside a `pipelined` block on PostgreSQL the COMMIT is queued behind the
    writes and sent with them when the block ends (an error in any of them then fails the block, and nothing is
    committed); `connection.commit()` after the block only closes SQLAlchemy's transaction (the driver is idle)."""
    if _PIPELINE not in connection.info:
        connection.commit()
        return
    driver_connection: Any = connection.connection.driver_connection
    driver_connection.cursor().execute("COMMIT")


def _wait_for_reads(
    connection: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """A statement that returns rows, sent in pipeline mode: wait for its answer before SQLAlchemy reads it."""
    pipeline = connection.info.get(_PIPELINE)
    if pipeline is not None and not _writes_only(statement):
        pipeline.sync()


def _writes_only(statement: str) -> bool:
    verb = statement.lstrip()[:6].upper()
    return verb in ("INSERT", "UPDATE", "DELETE") and "RETURNING" not in statement.upper()


Read = tuple[str, Sequence[Any]]
"""A driver-level SELECT (with this connection's parameter markers) and its parameters."""


def marker(connection: Connection) -> str:
    """The driver's parameter marker: `%s` (psycopg) or `?` (sqlite3)."""
    return _marker(connection)


def read_many(
    connection: Connection, reads: Sequence[Read], *, prepare: bool | None = None
) -> list[list[tuple[Any, ...]]]:
    """The rows of several independent SELECTs: in one round trip on PostgreSQL (sent together in pipeline mode,
    inside or outside a `pipelined` block), one after the other on SQLite.

    psycopg prepares a statement run often on a connection, and PostgreSQL may keep one generic plan for it, chosen
    while the tables were small; `prepare=False` plans each run for its parameters and the tables as they are now
    (the read models' key lookups: a generic plan chosen on a tiny table scans it whole once it has grown).
    """
    if connection.dialect.name != "postgresql" or len(reads) < 2:
        return [_fetch(connection, sql, parameters, prepare=prepare) for sql, parameters in reads]
    driver_connection: Any = connection.connection.driver_connection
    cursors = [driver_connection.cursor() for _ in reads]
    try:
        active = connection.info.get(_PIPELINE)
        if active is not None:
            for cursor, (sql, parameters) in zip(cursors, reads, strict=True):
                cursor.execute(sql, tuple(parameters), prepare=prepare)
            active.sync()
        else:
            with driver_connection.pipeline():
                for cursor, (sql, parameters) in zip(cursors, reads, strict=True):
                    cursor.execute(sql, tuple(parameters), prepare=prepare)
        return [[tuple(row) for row in cursor.fetchall()] for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def stream_tail_reads(connection: Connection, stream_type: str, stream_id: str, after_version: int) -> list[Read]:
    """What `read_many` needs to bring a state folded to `after_version` up to date: the events from that version on
    (the event at it first, when it is past 0: its hash proves the state is still the stream's)."""
    events = select_events_sql(
        connection, "stream_type = {p} AND stream_id = {p} AND stream_version >= {p}", "stream_version"
    )
    return [(events, (stream_type, stream_id, max(after_version, 1)))]
