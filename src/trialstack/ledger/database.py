"""Engines for the two backends: SQLite (embedded, WAL, synchronous=FULL) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError

from trialstack.ledger.errors import DatabaseUnavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "trialstack_write"
"""Execution option a unit of work sets on its connection: on SQLite its transaction takes the write lock."""


def normalize_url(url: str) -> URL:
    """Accept `postgresql://` and `postgres://` as psycopg 3 URLs; refuse backends the ledger does not support."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"cannot parse database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise DatabaseUnavailable(f"unsupported database {backend!r} in {url!r}: use sqlite:/// or postgresql://")


def _configure_sqlite(engine: Engine) -> None:
    """WAL with synchronous=FULL, foreign keys, and BEGIN IMMEDIATE for units of work (the write lock up front).

    `synchronous = FULL` makes every commit fsync the WAL before it returns, so an acknowledged command survives a
    power loss (NORMAL would only survive a crash of the process, not of the machine). PostgreSQL keeps its default
    `synchronous_commit = on` for the same guarantee; nothing in TrialStack turns either off.

    Taking the lock at BEGIN is how appends to a study are serialized on SQLite (DESIGN.md §2); reads begin a
    deferred transaction and never wait for writers (WAL). pysqlite's own transaction handling is switched off so
    SQLAlchemy's `begin` event decides the BEGIN statement.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        writing = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine and check that the database answers; one clear error if it does not."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
    else:
        engine = create_engine(
            parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5, "options": "-c timezone=UTC"}, **kwargs
        )
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot reach database {parsed.render_as_string(hide_password=True)}: {reason}"
        ) from None
    return engine


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
