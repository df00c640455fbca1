"""Recompute every hash chain from what is stored and report the first broken link (DESIGN.md §2).

Each row stores its `prev_hash`, so a chain can be checked in pieces: a chunk (a range of `study_seq`) checks
its own rows' hashes and that each row's `prev_hash` is the hash of the row before it inside the chunk; the
parent joins the chunks in order, checking each chunk's first row against the end of the chunk before it. Large
ledgers are checked by a pool of processes (one per CPU), each with its own connection; small ones in-process.
Either way the report is the same: the first broken `study_seq` of each study and why.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import os
import pickle
import selectors
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, select

import trialstack
from trialstack.ledger.chain import GENESIS_HASH
from trialstack.ledger.errors import LedgerError
from trialstack.ledger.schema import ledger_event, study_head
from trialstack.ledger.store import select_events_sql
from trialstack.ledger.verify_worker import (
    BrokenLink,
    ChunkResult,
    Progress,
    check_rows,
    cursor_rows,
    read_answer,
)

__all__ = [
    "CHUNK_ROWS",
    "BrokenLink",
    "StudyBounds",
    "VerifyReport",
    "join_chunks",
    "study_bounds",
    "verify",
    "verify_study",
]

CHUNK_ROWS = 25_000
"""The most rows in one chunk; a ledger no bigger than one chunk is verified in-process, by one process."""
MIN_CHUNK_ROWS = 1_000
WORKER_COMMAND = "from trialstack.ledger.verify_worker import serve; serve()"


@dataclass
class VerifyReport:
    studies: int = 0
    events: int = 0
    broken: list[BrokenLink] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken


@dataclass(frozen=True)
class StudyBounds:
    """One study as seen in one snapshot: its lowest and highest `study_seq` and its head row (if any)."""

    study_id: str
    low: int | None
    high: int | None
    head: tuple[int, str] | None


def join_chunks(bounds: StudyBounds, chunks: Iterable[ChunkResult]) -> tuple[int, BrokenLink | None]:
    """Join a study's chunk results in `study_seq` order: (events checked, first broken link or None)."""
    study_id = bounds.study_id
    expected = 1
    prev = GENESIS_HASH
    for chunk in chunks:
        if chunk.first_seq is None:
            continue
        if chunk.first_seq != expected:
            return expected - 1, BrokenLink(
                study_id, expected, f"study_seq {expected} is missing (next is {chunk.first_seq})"
            )
        if chunk.first_prev != prev:
            return expected - 1, BrokenLink(
                study_id, expected, "prev_hash does not match the hash of the event before it"
            )
        if chunk.broken is not None:
            return chunk.broken.study_seq - 1, chunk.broken
        if chunk.last_seq is not None and chunk.last_hash is not None:
            expected, prev = chunk.last_seq + 1, chunk.last_hash
    checked = expected - 1
    if bounds.head is not None and bounds.head != (checked, prev):
        return checked, BrokenLink(
            study_id, bounds.head[0], f"study head says seq {bounds.head[0]} but the chain ends at {checked}"
        )
    return checked, None


def study_bounds(connection: Connection, study_id: str) -> StudyBounds:
    """The study's extent and head in one statement, hence one snapshot on either backend.

    Verification covers the rows up to `high`: rows are immutable and appends only add higher positions, so
    events committed while the chain is being checked are left for the next run instead of looking like a break.
    """
    marker = "%s" if connection.dialect.name == "postgresql" else "?"
    row = connection.exec_driver_sql(
        f"SELECT (SELECT min(study_seq) FROM ledger_event WHERE study_id = {marker}),"
        f" (SELECT max(study_seq) FROM ledger_event WHERE study_id = {marker}),"
        f" (SELECT last_seq FROM study_head WHERE study_id = {marker}),"
        f" (SELECT last_hash FROM study_head WHERE study_id = {marker})",
        (study_id,) * 4,
    ).one()
    low, high, head_seq, head_hash = row
    head = (int(head_seq), str(head_hash)) if head_seq is not None else None
    return StudyBounds(study_id, None if low is None else int(low), None if high is None else int(high), head)


def _range_sql(connection: Connection) -> str:
    return select_events_sql(connection, "study_id = {p} AND study_seq > {p} AND study_seq <= {p}", "study_seq")


def verify_study(
    connection: Connection, study_id: str, progress: Progress | None = None
) -> tuple[int, BrokenLink | None]:
    """Walk one study's chain in `study_seq` order, in-process; return (events checked, first broken link)."""
    bounds = study_bounds(connection, study_id)
    chunks = []
    if bounds.low is not None and bounds.high is not None:
        rows = _driver_rows(connection, _range_sql(connection), (study_id, bounds.low - 1, bounds.high))
        chunks.append(check_rows(study_id, rows, progress))
    return join_chunks(bounds, chunks)


def _driver_rows(connection: Connection, sql: str, parameters: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    driver: Any = connection.connection.driver_connection
    yield from cursor_rows(driver, connection.dialect.name == "postgresql", sql, parameters)


def verify(
    connection: Connection,
    study_id: str | None = None,
    progress: Progress | None = None,
    *,
    workers: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> VerifyReport:
    """Verify one study or all of them (every study in the ledger, with or without a head row).

    `workers` processes (default: one per CPU) check chunks of `chunk_rows` positions when the ledger is larger
    than one chunk and the database can be opened by another process; otherwise the chain is walked in-process
    on `connection`. The report is the same either way.
    """
    if study_id is not None:
        studies = [study_id]
    else:
        found = {str(r[0]) for r in connection.execute(select(ledger_event.c.study_id).distinct())}
        found |= {str(r[0]) for r in connection.execute(select(study_head.c.study_id))}
        studies = sorted(found)
    all_bounds = [study_bounds(connection, sid) for sid in studies]
    span = sum(b.high - b.low + 1 for b in all_bounds if b.low is not None and b.high is not None)
    workers = (os.cpu_count() or 1) if workers is None else workers
    target = _worker_target(connection)
    if workers > 1 and span > chunk_rows and target is not None:
        results = _verify_in_pool(connection, all_bounds, target, workers, chunk_rows, progress)
    else:
        results = {}
        for bounds in all_bounds:
            if bounds.low is not None and bounds.high is not None:
                rows = _driver_rows(connection, _range_sql(connection), (bounds.study_id, bounds.low - 1, bounds.high))
                results[bounds.study_id] = [check_rows(bounds.study_id, rows, progress)]
    report = VerifyReport()
    for bounds in all_bounds:
        checked, broken = join_chunks(bounds, results.get(bounds.study_id, []))
        report.studies += 1
        report.events += checked
        if broken is not None:
            report.broken.append(broken)
    return report


def _worker_target(connection: Connection) -> tuple[str, str] | None:
    """How a worker process opens the same database: ("sqlite", file URI) or ("postgresql", libpq URL).

    None when another process cannot see this database (SQLite in memory).
    """
    url = connection.engine.url
    if connection.dialect.name == "postgresql":
        return "postgresql", url.set(drivername="postgresql").render_as_string(hide_password=False)
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or not Path(database).is_file():
        return None
    return "sqlite", Path(database).resolve().as_uri() + "?mode=ro"


def _chunk_bounds(bounds: StudyBounds, chunk_rows: int) -> list[tuple[int, int]]:
    """(after, upto] ranges of `study_seq` covering every row of the study up to its snapshot's highest position."""
    if bounds.low is None or bounds.high is None:
        return []
    start, span = bounds.low - 1, bounds.high - bounds.low + 1
    pieces = math.ceil(span / chunk_rows)
    edges = [start + math.ceil(span * n / pieces) for n in range(pieces + 1)]
    return list(itertools.pairwise(edges))


def _verify_in_pool(
    connection: Connection,
    all_bounds: list[StudyBounds],
    target: tuple[str, str],
    workers: int,
    chunk_rows: int,
    progress: Progress | None,
) -> dict[str, list[ChunkResult]]:
    """Check the chunks with `workers` processes: this one and `workers - 1` helpers, and collect what they found.

    Helpers are fresh interpreters running `verify_worker.serve` (not forks: SQLite forbids carrying an open
    database across fork(), and multiprocessing's spawn would re-run the caller's main module in every worker).
    This process checks chunks too, on its own connection, so nothing waits while the helpers start. Chunks are
    small enough (a quarter of each process's share, at most `chunk_rows`) that all finish close together; a
    helper holds at most two chunks (one before its first answer), the rest wait in a shared queue.
    """
    sql = _range_sql(connection)
    span = sum(b.high - b.low + 1 for b in all_bounds if b.low is not None and b.high is not None)
    size = min(chunk_rows, max(MIN_CHUNK_ROWS, math.ceil(span / (workers * 4))))
    plan = [(b.study_id, after, upto) for b in all_bounds for after, upto in _chunk_bounds(b, size)]
    queue = collections.deque(range(len(plan)))
    results: dict[int, ChunkResult] = {}
    helpers: list[subprocess.Popen[bytes]] = []
    in_flight: list[collections.deque[int]] = []
    answered: set[int] = set()
    selector = selectors.DefaultSelector()

    def feed(index: int) -> None:
        while queue and len(in_flight[index]) < (2 if index in answered else 1):
            task = queue.popleft()
            in_flight[index].append(task)
            _send(helpers[index], plan[task])

    finished = False
    try:
        for index in range(min(workers - 1, len(plan) - 1)):
            helpers.append(_start_worker((*target, sql)))
            in_flight.append(collections.deque())
            selector.register(_pipe(helpers[index].stdout).fileno(), selectors.EVENT_READ, index)
            feed(index)
        while queue or any(in_flight):
            for key, _ in selector.select(timeout=0 if queue else None):
                index = key.data
                result = _answer(helpers[index])
                results[in_flight[index].popleft()] = result
                if progress is not None:
                    progress(result.checked)
                answered.add(index)
                feed(index)
            if queue:
                task = queue.popleft()
                study_id, after, upto = plan[task]
                results[task] = check_rows(study_id, _driver_rows(connection, sql, (study_id, after, upto)), progress)
        finished = True
    finally:
        selector.close()
        _stop(helpers, kill=not finished)
    by_study: dict[str, list[ChunkResult]] = {}
    for task, (study_id, _, _) in enumerate(plan):
        by_study.setdefault(study_id, []).append(results[task])
    return by_study


def _start_worker(header: tuple[str, str, str]) -> subprocess.Popen[bytes]:
    """A worker interpreter that finds this very `trialstack` package first, whatever the caller's sys.path."""
    package_root = str(Path(trialstack.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER_COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    _send(process, header)
    return process


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    if stream is None:  # pragma: no cover - every worker is started with pipes
        raise LedgerError("a verify worker has no pipe")
    return stream


def _send(process: subprocess.Popen[bytes], message: object) -> None:
    stdin = _pipe(process.stdin)
    try:
        stdin.write(pickle.dumps(message))
        stdin.flush()
    except BrokenPipeError:
        _answer(process)  # the worker stopped: report what it said, or that it died
        raise LedgerError("a verify worker stopped before its task") from None


def _answer(process: subprocess.Popen[bytes]) -> ChunkResult:
    try:
        status, value = read_answer(_pipe(process.stdout).fileno())
    except (EOFError, pickle.UnpicklingError):
        code = process.wait()
        raise LedgerError(f"a verify worker exited unexpectedly (exit code {code})") from None
    if status != "ok":
        raise LedgerError(str(value))
    if not isinstance(value, ChunkResult):  # pragma: no cover - the worker only sends ChunkResults
        raise LedgerError(f"a verify worker answered {type(value).__name__}")
    return value


def _stop(pool: list[subprocess.Popen[bytes]], kill: bool = False) -> None:
    """Close every worker's stdin (it exits at end of input); kill any that does not exit promptly, or all at once
    when verification stopped on an error."""
    for process in pool:
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        if kill:
            process.kill()
    for process in pool:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
