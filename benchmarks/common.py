"""Helpers shared by the benchmarks: timing, scratch databases, a served instance, and the one output line format."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
from sqlalchemy import Connection

from trialstack.errors import TrialStackError

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(
    database_url: str, log: Path, environment: dict[str, str] | None = None, startup_seconds: float = 300
) -> Iterator[str]:
    """`trialstack serve` on a free 127.0.0.1 port in its own process; yields its base URL once /health answers,
    and stops it after (the log file keeps what it printed, for the error when it does not start)."""
    port = free_port()
    script = Path(sys.executable).with_name("trialstack")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "trialstack.cli.main"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "serve", "--db", database_url, "--host", "127.0.0.1", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(environment or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise TrialStackError(f"trialstack serve exited with {process.returncode}:\n{log.read_text()}")
            with suppress(OSError), urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise TrialStackError(f"trialstack serve did not answer on {base}:\n{log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
