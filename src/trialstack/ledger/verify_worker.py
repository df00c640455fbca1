"""Checking one piece of a hash chain, in-process or in a verify worker process (DESIGN.md §2).

`check_rows` is the inner loop of `trialstack verify`. `serve` is the body of a worker process that
`trialstack.ledger.verify` starts with `python -c` (so a worker never re-runs the caller's main module): it opens
its own read-only connection, then reads pickled tasks `(study_id, after, upto)` on stdin and answers each with a
length-framed pickle of `("ok", ChunkResult)` or `("error", message)` on stdout. It imports only what checking needs (no
SQLAlchemy), so a worker is ready in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

Progress = Callable[[int], None]
FETCH_ROWS = 10_000


@dataclass(frozen=True)
class BrokenLink:
    study_id: str
    study_seq: int
    reason: str


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk found: its first row's position and `prev_hash`, the last good row, the first break inside.

    The first row's `prev_hash` and position are checked by whoever joins the chunks; `broken` is a break after
    that (a gap or a `prev_hash` that does not follow), or the first row's own hash.
    """

    checked: int = 0
    first_seq: int | None = None
    first_prev: str | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    broken: BrokenLink | None = None


def check_rows(study_id: str, rows: Iterable[tuple[Any, ...]], progress: Progress | None = None) -> ChunkResult:
    """Check consecutive rows of one study (whole ledger rows in table order, ordered by `study_seq`).

    The loop works on raw driver rows and builds each envelope inline: verifying is I/O plus one orjson call
    and one SHA-256 per event, so the chain can be checked at close to the speed rows come off the disk.
    """
    sha256 = hashlib.sha256
    dumps = orjson.dumps
    fragment = orjson.Fragment
    sort_keys = orjson.OPT_SORT_KEYS
    first_seq: int | None = None
    first_prev: str | None = None
    expected = 0
    prev = ""
    checked = 0
    broken: BrokenLink | None = None
    for row in rows:
        (_, sid, seq, stype, sidn, sver, etype, schema, payload, actor, role, behalf, reason, occurred, recorded,
         source, external, correlation, causation, prev_hash, stored_hash) = row  # fmt: skip
        if first_seq is None:
            first_seq, first_prev = seq, prev_hash
        elif seq != expected:
            broken = BrokenLink(study_id, expected, f"study_seq {expected} is missing (next is {seq})")
            break
        elif prev_hash != prev:
            broken = BrokenLink(study_id, seq, "prev_hash does not match the hash of the event before it")
            break
        envelope = dumps(
            {
                "actor_id": actor,
                "actor_role": role,
                "causation_id": causation,
                "correlation_id": correlation,
                "event_type": etype,
                "external_id": external,
                "occurred_at": occurred,
                "on_behalf_of": behalf,
                "payload": fragment(payload),
                "prev_hash": prev_hash,
                "reason": reason,
                "recorded_at": recorded,
                "schema_version": schema,
                "source": source,
                "stream_id": sidn,
                "stream_type": stype,
                "stream_version": sver,
                "study_id": sid,
                "study_seq": seq,
            },
            option=sort_keys,
        )
        if sha256(prev_hash.encode("ascii") + envelope).hexdigest() != stored_hash:
            broken = BrokenLink(study_id, seq, "hash does not match the event's content")
            break
        prev = stored_hash
        expected = seq + 1
        checked += 1
        if progress is not None and checked % FETCH_ROWS == 0:
            progress(FETCH_ROWS)
    if progress is not None:
        progress(checked % FETCH_ROWS)
    return ChunkResult(checked, first_seq, first_prev, expected - 1 if checked else None, prev or None, broken)


def cursor_rows(driver: Any, postgres: bool, sql: str, parameters: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """Rows straight off a DB-API cursor in large batches (a server-side cursor on PostgreSQL).

    Verification reads every row once; skipping SQLAlchemy's row objects roughly doubles its speed.
    """
    if postgres:
        cursor = driver.cursor(name=f"verify_{os.getpid()}_{id(parameters)}")
        cursor.itersize = FETCH_ROWS
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(sql, parameters)
        while batch := cursor.fetchmany(FETCH_ROWS):
            yield from batch
    finally:
        cursor.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open(backend: str, target: str) -> Any:
    """A read-only connection: SQLite by file URI (`mode=ro`), PostgreSQL by libpq URL."""
    if backend == "postgresql":
        import psycopg  # imported here: a worker for a SQLite ledger never pays for it

        postgres = psycopg.connect(target, connect_timeout=5)
        postgres.read_only = True
        return postgres
    sqlite = sqlite3.connect(target, uri=True)
    sqlite.execute("PRAGMA busy_timeout = 30000")
    return sqlite


def write_answer(stream: Any, answer: tuple[str, Any]) -> None:
    """One answer: an 8-byte length, then the pickle (framed, so the reader never reads past one answer)."""
    body = pickle.dumps(answer)
    stream.write(len(body).to_bytes(8, "big") + body)
    stream.flush()


def read_answer(descriptor: int) -> tuple[str, Any]:
    """Read exactly one framed answer from a pipe's file descriptor; EOFError if the worker is gone."""
    size = int.from_bytes(_read_exact(descriptor, 8), "big")
    answer: tuple[str, Any] = pickle.loads(_read_exact(descriptor, size))
    return answer


def _read_exact(descriptor: int, size: int) -> bytes:
    parts = []
    while size:
        part = os.read(descriptor, size)
        if not part:
            raise EOFError
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def serve() -> None:
    """A worker process: one connection, then one answer per task until stdin closes."""
    tasks, answers = sys.stdin.buffer, sys.stdout.buffer
    backend, target, sql = pickle.load(tasks)
    try:
        connection = _open(backend, target)
    except Exception as exc:
        write_answer(answers, ("error", f"a verify worker cannot open the database: {_one_line(exc)}"))
        return
    postgres = backend == "postgresql"
    while True:
        try:
            study_id, after, upto = pickle.load(tasks)
        except EOFError:
            break
        try:
            rows = cursor_rows(connection, postgres, sql, (study_id, after, upto))
            answer: tuple[str, Any] = ("ok", check_rows(study_id, rows))
        except Exception as exc:
            answer = ("error", f"a verify worker failed on study {study_id}: {_one_line(exc)}")
        finally:
            connection.rollback()
        write_answer(answers, answer)
    connection.close()
