"""`trialstack bench capture`: saving a 20-item form with its edit checks, against a bare INSERT + COMMIT.

Per backend, in one run: p50/p99 of a form save through the real handler (load casebook, decide, append,
reactions, read models, one transaction) vs a one-row INSERT + COMMIT on the same engine, so with the same durable
commit (SQLite WAL with synchronous FULL, PostgreSQL synchronous_commit on: printed); then the save p99 again with
1 M and 10 M events already in the ledger vs empty (`--sizes`). The large ledger is written by a fast generator:
synthetic events of another study, hash-chained like any append (`trialstack verify` holds), inserted in bulk.
"""

from __future__ import annotations

import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from benchmarks.common import Emit, scratch_postgres, scratch_sqlite
from trialstack.bootstrap import Platform, bootstrap
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.clock import FixedClock
from trialstack.ledger import store
from trialstack.ledger.chain import GENESIS_HASH, envelope_bytes
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.settings import Settings

STUDY = "BENCH-20"
SITE = "01"
COORDINATOR = Actor("user:bench", "study_coordinator")
ITEMS = 20
FILL_BATCH = 50_000


def bench_definition() -> StudyDefinition:
    """One visit with one 20-item form: 20 range checks plus 10 cross-item checks, like a vital-signs page."""
    items = [
        {
            "id": f"V{n:02d}",
            "label": f"Measurement {n}",
            "type": "integer",
            "unit": "u",
            "range": {"min": 10, "max": 500},
        }
        for n in range(ITEMS)
    ]
    checks = [
        {
            "id": f"X{n:02d}",
            "form": "F20",
            "item": f"V{n:02d}",
            "expression": f"V{n:02d} < V{n + 1:02d} + 200 and abs(V{n:02d} - V{n + 1:02d}) <= 400",
            "message": f"V{n:02d} inconsistent with V{n + 1:02d}",
        }
        for n in range(0, ITEMS - 1, 2)
    ]
    return StudyDefinition.model_validate(
        {
            "study": {"id": STUDY, "name": "Capture benchmark", "phase": "2", "protocol_version": "1"},
            "sites": [{"id": SITE, "name": "Bench site", "country": "US"}],
            "schedule": {"anchor": "V1", "visits": [{"id": "V1", "name": "Visit 1", "day": 1, "forms": ["F20"]}]},
            "forms": [{"id": "F20", "name": "Twenty items", "items": items}],
            "edit_checks": checks,
        }
    )


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def prepare_subjects(platform: Platform, count: int) -> list[str]:
    subjects = []
    for _ in range(count):
        with platform.unit_of_work(COORDINATOR) as uow:
            outcome = handlers.screen_subject(uow, STUDY, cmd.ScreenSubject(SITE, "2026-01-05"))
            subject = str(outcome.subject_id)
            handlers.record_visit_date(uow, STUDY, cmd.RecordVisitDate(subject, VisitKey("V1"), "2026-01-05"))
            uow.commit()
        subjects.append(subject)
    return subjects


def time_saves(platform: Platform, subjects: list[str], seed: int) -> list[float]:
    samples = []
    form = FormKey("F20", VisitKey("V1"))
    for index, subject in enumerate(subjects):
        values = {f"V{n:02d}": cmd.ItemInput(str(100 + (index * 7 + n * 13 + seed) % 300)) for n in range(ITEMS)}
        start = time.perf_counter()
        with platform.unit_of_work(COORDINATOR) as uow:
            handlers.save_form(uow, STUDY, cmd.SaveForm(subject, form, values))
            uow.commit()
        samples.append(time.perf_counter() - start)
    return samples


def time_bare_commits(platform: Platform, count: int) -> list[float]:
    with platform.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_bare (id INTEGER PRIMARY KEY, note TEXT)")
    marker = "%s" if platform.engine.dialect.name == "postgresql" else "?"
    samples = []
    for n in range(count):
        start = time.perf_counter()
        with platform.engine.begin() as connection:
            connection.exec_driver_sql(f"INSERT INTO bench_bare (id, note) VALUES ({marker}, {marker})", (n, "x" * 40))
        samples.append(time.perf_counter() - start)
    return samples


FILLER = "FILLER"
_FILLER_TIME = "2025-06-01T00:00:00.000000Z"


def _filler_fields(seq: int, prev: str) -> dict[str, Any]:
    """The envelope of the filler event at `seq`: 200 events per stream, item values like a form's."""
    return {
        "study_id": FILLER, "study_seq": seq, "stream_type": "filler", "stream_id": f"{FILLER}/{seq // 200}",
        "stream_version": seq % 200 + 1, "event_type": "FillerRecorded", "schema_version": 1,
        "payload_json": f'{{"item":"V{seq % 20:02d}","subject_id":"F-{seq // 200:07d}","value":"{seq % 300}"}}',
        "actor_id": "bench", "actor_role": "system", "on_behalf_of": None, "reason": None,
        "occurred_at": _FILLER_TIME, "recorded_at": _FILLER_TIME, "source": None, "external_id": None,
        "correlation_id": None, "causation_id": None, "prev_hash": prev,
    }  # fmt: skip


def _filler_template() -> list[bytes]:
    """`envelope_bytes` of a filler event cut where its variable fields go, so a million are built by joining."""
    marks = {"stream_id": "@STREAM@", "payload_json": "@PAYLOAD@", "prev_hash": "@PREV@"}
    fields = {**_filler_fields(0, ""), **marks, "study_seq": 8_675_309_001, "stream_version": 8_675_309_002}
    text = envelope_bytes(**fields).decode()
    for mark in ("8675309001", "8675309002", *marks.values()):
        text = text.replace(mark, "\x00")
    return [part.encode() for part in text.split("\x00")]


def checkpoint(platform: Platform) -> None:
    """Write the bulk-loaded history out of the WAL before measuring: history that built up over months was
    checkpointed long ago, so the saves measured at a size should not share the disk with the load's checkpoint."""
    with platform.engine.connect() as connection, suppress(DBAPIError):  # CHECKPOINT needs pg_checkpoint rights
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("CHECKPOINT")
        else:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def commit_durability(platform: Platform) -> str:
    """How the platform's engine, used by saves and bare commits alike, makes a commit durable."""
    with platform.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            return f"synchronous_commit {connection.exec_driver_sql('SHOW synchronous_commit').scalar()}"
        level: int = connection.exec_driver_sql("PRAGMA synchronous").scalar_one()
        journal: str = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
    return f"journal {journal}, synchronous {dict(enumerate(['OFF', 'NORMAL', 'FULL', 'EXTRA'])).get(level, level)}"


def fill_ledger(platform: Platform, total: int, progress: Callable[[int], None] | None = None) -> None:
    """Bring the FILLER study to `total` hash-chained events, written straight into the ledger in bulk (no
    projections): the envelope bytes come from a template checked against `envelope_bytes` once per batch."""
    with platform.engine.connect() as connection:
        already = store.count_events(connection, FILLER)
        last = store.read_study(connection, FILLER, max(0, already - 1), 1)
    prev = last[-1].hash if last else GENESIS_HASH
    cut = _filler_template()
    sha256 = hashlib.sha256
    batch: list[tuple[Any, ...]] = []
    for seq in range(already + 1, total + 1):
        fields = _filler_fields(seq, prev)
        envelope = b"".join(
            (cut[0], fields["payload_json"].encode(), cut[1], prev.encode(), cut[2], fields["stream_id"].encode(),
             cut[3], b"%d" % fields["stream_version"], cut[4], b"%d" % seq, cut[5])
        )  # fmt: skip
        if not batch and envelope != envelope_bytes(**fields):
            raise AssertionError("the filler template no longer matches envelope_bytes")
        digest = sha256(prev.encode() + envelope).hexdigest()
        batch.append((*fields.values(), digest))
        prev = digest
        if len(batch) == FILL_BATCH or seq == total:
            with platform.engine.begin() as connection:
                store.insert_events(connection, batch)
                connection.exec_driver_sql(f"DELETE FROM study_head WHERE study_id = '{FILLER}'")
                connection.exec_driver_sql(
                    f"INSERT INTO study_head (study_id, last_seq, last_hash) VALUES ('{FILLER}', {seq}, '{digest}')"
                )
            if progress is not None:
                progress(len(batch))
            batch = []


def bench_backend(label: str, scratch: AbstractContextManager[str], saves: int, sizes: list[int], emit: Emit) -> None:
    with scratch as url:
        platform = bootstrap(
            Settings(database_url=url), clock=FixedClock(datetime(2026, 1, 6, tzinfo=UTC)), migrate=True
        )
        with platform.unit_of_work(COORDINATOR) as uow:
            publish_study_version(uow, PublishStudyVersion(study_version(bench_definition()), "yaml", "bench"))
            uow.commit()
        bare = time_bare_commits(platform, saves)
        bare_p50, bare_p99 = percentile(bare, 0.5), percentile(bare, 0.99)
        emit(
            f"{label} bare insert+commit ({commit_durability(platform)}): p50 {bare_p50 * 1e3:.2f} ms,"
            f" p99 {bare_p99 * 1e3:.2f} ms"
        )
        baseline_p99 = 0.0
        for size in sizes:
            if size:
                fill_ledger(platform, size)
                checkpoint(platform)
            subjects = prepare_subjects(platform, saves)
            samples = time_saves(platform, subjects, seed=size)
            p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
            if not baseline_p99:
                baseline_p99 = p99
                emit(f"{label} save 20-item form p50: {p50 * 1e3:.2f} ms ({p50 / bare_p50:.2f}× bare p50)")
                emit(f"{label} save 20-item form p99: {p99 * 1e3:.2f} ms ({p99 / bare_p99:.2f}× bare p99)")
            else:
                emit(
                    f"{label} save p99 with {size:,} events in the ledger: {p99 * 1e3:.2f} ms "
                    f"({p99 / baseline_p99:.2f}× empty ledger)"
                )
            emit(f"{label}   (mean {statistics.mean(samples) * 1e3:.2f} ms over {len(samples)} saves)")
        platform.close()


def run(
    saves: int = 300, sizes: list[int] | None = None, postgres_server: str | None = None, emit: Emit = print
) -> None:
    sizes = sizes if sizes is not None else [0, 1_000_000, 10_000_000]
    with tempfile.TemporaryDirectory() as directory:
        bench_backend("sqlite", scratch_sqlite(Path(directory)), saves, sizes, emit)
    if postgres_server:
        bench_backend("postgresql", scratch_postgres(postgres_server), saves, sizes, emit)
