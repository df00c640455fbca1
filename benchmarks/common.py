"""Helpers shared by the benchmarks: timing, scratch databases, and the one output line format."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Connection

Emit = Callable[[str], object]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _cpu_seconds() -> float:
    """CPU time of this process and of the child processes it has waited for (user + system)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed_with_cpu(function: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children): on a busy machine the wall clock says how much
    CPU was free, the CPU time what the work itself costs."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    function()
    return time.perf_counter() - wall, _cpu_seconds() - cpu


def line(name: str, value: float, unit: str, baseline: float | None = None, baseline_name: str = "") -> str:
    """`name: value unit (ratio× baseline)`; for rates a ratio above 1 is better than the baseline."""
    text = f"{name}: {value:,.0f} {unit}" if value >= 100 else f"{name}: {value:,.2f} {unit}"
    if baseline:
        text += f" ({value / baseline:.2f}× {baseline_name})"
    return text


def durability(connection: Connection) -> str:
    """The commit durability of a connection, checked: every figure is measured with an acknowledged commit on disk.

    SQLite must run WAL with `synchronous = FULL` (2) and PostgreSQL with `synchronous_commit = on`, the settings
    TrialStack's engine uses; a benchmark whose baseline ran with weaker settings would flatter the baseline.
    """
    if connection.dialect.name == "postgresql":
        commit = connection.exec_driver_sql("SHOW synchronous_commit").scalar()
        fsync = connection.exec_driver_sql("SHOW fsync").scalar()
        if (commit, fsync) != ("on", "on"):
            raise RuntimeError(f"PostgreSQL runs with synchronous_commit={commit} fsync={fsync}: not durable")
        return "synchronous_commit=on fsync=on"
    journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    if (journal, synchronous) != ("wal", 2):
        raise RuntimeError(f"SQLite runs with journal_mode={journal} synchronous={synchronous}: not WAL + FULL")
    return "journal_mode=wal synchronous=FULL"


@contextmanager
def scratch_sqlite(directory: Path) -> Iterator[str]:
    path = directory / f"bench-{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def scratch_postgres(server_url: str) -> Iterator[str]:
    """A database created for one benchmark run and dropped after it, on the given server."""
    admin = server_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"trialstack_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
