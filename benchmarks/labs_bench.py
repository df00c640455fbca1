"""`trialstack bench labs`: a central lab's CSV of `--rows` results for `--subjects` subjects imported into SQLite
and PostgreSQL, against a plain batched INSERT of the same rows in the same run.

The file is generated (streamed to disk): per subject, samples at its seven recorded visits, ten tests each, values
mostly in range, a few graded (some ≥ 3, which alert), no visit column (each result is matched to its visit by the
collection date). Each backend gets a fresh database with the demo study and the subjects' screening and visit
dates (appended as capture's events in one unit of work: setup, not measured).

- import: `read_csv` + `labs.handlers.receive_results` in one unit of work (the CLI's path), in a child process, so
  its peak RSS is its own; it prints wall seconds and the peak RSS;
- baseline: in a child process too, the same file read with the csv module and inserted with executemany into a
  plain table of the same columns, in batches of 1,000, one transaction, same engine and durability;
- memory flat: the import of a quarter of the file on SQLite, whose peak RSS should be the same.
Targets (issue 16): ≤ 30 s and ≤ 300 MB peak RSS on SQLite, ≥ 0.3× the plain insert, flat memory.
"""

from __future__ import annotations

import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import Emit, durability, scratch_postgres, scratch_sqlite
from trialstack.bootstrap import bootstrap
from trialstack.capture.events import SubjectScreened, VisitDateRecorded
from trialstack.consent.events import ConsentRecordedOnPaper, PartChoice
from trialstack.labs import commands as cmd
from trialstack.labs import handlers as labs
from trialstack.ledger.envelope import Actor, NewEvent
from trialstack.ledger.registry import encode
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.settings import Settings
from trialstack.standards.lab_csv import read_csv
from trialstack.standards.loader import load_study_file

ROOT = Path(__file__).resolve().parent.parent
STUDY = "HTN-201"
FEED = Actor("feed:CENTRAL", "system")
VISITS = (("SCREENING", -14), ("DAY1", 0), ("WEEK2", 14), ("WEEK4", 28), ("WEEK8", 56), ("WEEK12", 84), ("EOS", 98))
TESTS = (
    ("K", "mmol/L", 3.6, 5.0, 1), ("NA", "mmol/L", 137, 144, 0), ("CREA", "umol/L", 60, 110, 0),
    ("ALT", "U/L", 10, 50, 0), ("AST", "U/L", 10, 45, 0), ("TBIL", "umol/L", 4, 19, 0),
    ("GLU", "mg/dL", 72, 98, 0), ("HGB", "g/dL", 12.5, 16, 1), ("ANC", "10*9/L", 1.8, 7, 2),
    ("PLT", "10*9/L", 160, 420, 0),
)  # fmt: skip
COLUMNS = ("patient_id", "accession", "test_code", "value", "unit", "status", "version", "collected_at", "sex",
           "age_years")  # fmt: skip


def subject_ids(count: int) -> list[str]:
    return [f"{101 + n % 2:04d}-{n // 2 + 1:04d}" for n in range(count)]


def first_day(subject: int) -> date:
    return date(2026, 2, 1) + timedelta(days=subject % 200)


def generate(path: Path, rows: int, subjects: int, seed: int = 16) -> None:
    """Rows spread evenly over the subjects and their visits; about 5 % abnormal, some of those severe."""
    rng = random.Random(seed)
    ids = subject_ids(subjects)
    samples = max(1, rows // (subjects * len(TESTS)))
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        written = 0
        for sample in range(samples):
            _visit, offset = VISITS[sample % len(VISITS)]
            for n, subject in enumerate(ids):
                day = first_day(n) + timedelta(days=offset - (sample // len(VISITS)) % 3)
                accession = f"ACC{n:05d}{sample:04d}"
                for code, unit, low, high, decimals in TESTS:
                    if written == rows:
                        return
                    value = rng.uniform(low, high)
                    if rng.random() < 0.05:
                        value = value * rng.choice((0.3, 1.6, 3.5, 6.0))
                    writer.writerow((subject, accession, code, f"{value:.{decimals}f}", unit, "F", "1",
                                     f"{day.isoformat()}T08:{n % 60:02d}:00", "MF"[n % 2], 40 + n % 40))  # fmt: skip
                    written += 1


def consents(definition: StudyDefinition, subject: str, signed_on: date) -> list[NewEvent]:
    """Every required consent document signed on paper at screening (optional parts declined)."""
    site = subject[:4]
    events = []
    for document in definition.consent:
        current = document.current_at(site, signed_on)
        if current is not None:
            choices = [PartChoice(part=part.id, agreed=False) for part in current.optional_parts]
            events.append(encode(ConsentRecordedOnPaper(
                subject_id=subject, site_id=site, document_id=document.id, version=current.version, language="en",
                signed_on=signed_on.isoformat(), obtained_by="bench", obtained_by_name="Bench", choices=choices,
            )))  # fmt: skip
    return events


def prepare(database_url: str, subjects: int) -> None:
    """A fresh database with the demo study, its subjects screened and their visit dates recorded."""
    platform = bootstrap(Settings(database_url=database_url), migrate=True)
    try:
        definition = load_study_file(ROOT / "studies" / "demo" / "study.yaml")
        version = study_version(definition)
        with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
            publish_study_version(uow, PublishStudyVersion(version, "yaml", "study.yaml"))
            uow.commit()
        with platform.unit_of_work(Actor("user:bench", "study_coordinator")) as uow:
            for n, subject in enumerate(subject_ids(subjects)):
                events = [encode(SubjectScreened(subject_id=subject, site_id=subject[:4],
                                                 screened_on=(first_day(n) - timedelta(days=14)).isoformat(),
                                                 study_version=version.hash))]  # fmt: skip
                for visit, offset in VISITS:
                    on = (first_day(n) + timedelta(days=offset)).isoformat()
                    events.append(encode(VisitDateRecorded(subject_id=subject, visit=visit, visit_date=on,
                                                           study_version=version.hash)))  # fmt: skip
                uow.append(STUDY, "subject", f"{STUDY}/{subject}", events, expected_version=0)
                uow.append(
                    STUDY,
                    "consent",
                    f"{STUDY}/{subject}",
                    consents(definition, subject, first_day(n) - timedelta(days=17)),
                    expected_version=0,
                )
                if n % 200 == 199:
                    uow.flush()
            uow.commit()
    finally:
        platform.close()


def child_import(database_url: str, path: Path) -> dict[str, Any]:
    platform = bootstrap(Settings(database_url=database_url))
    try:
        start = time.perf_counter()
        with platform.unit_of_work(FEED) as uow:
            report = labs.receive_results(uow, STUDY, cmd.ReceiveLabResults("CENTRAL", read_csv(path)))
            uow.commit()
        seconds = time.perf_counter() - start
    finally:
        platform.close()
    return {"seconds": seconds, "rss_mb": _peak_rss_mb(), "report": report.as_dict() | {"errors": []}}


def child_baseline(database_url: str, path: Path) -> dict[str, Any]:
    platform = bootstrap(Settings(database_url=database_url))
    try:
        with platform.engine.connect() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE bench_lab_row (" + ", ".join(f"{c} VARCHAR(80)" for c in COLUMNS) + ")"
            )
            connection.commit()
        start = time.perf_counter()
        with platform.engine.connect() as connection:
            connection.begin()
            marker = "%s" if connection.dialect.name == "postgresql" else "?"
            sql = f"INSERT INTO bench_lab_row ({', '.join(COLUMNS)}) VALUES ({', '.join([marker] * len(COLUMNS))})"
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with path.open(newline="") as stream:
                reader = csv.reader(stream)
                next(reader)
                batch: list[list[str]] = []
                for row in reader:
                    batch.append(row)
                    if len(batch) == 1_000:
                        cursor.executemany(sql, batch)
                        batch = []
                if batch:
                    cursor.executemany(sql, batch)
            connection.commit()
        seconds = time.perf_counter() - start
    finally:
        platform.close()
    return {"seconds": seconds, "rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(kind: str, database_url: str, path: Path) -> dict[str, Any]:
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.labs_bench", kind, database_url, str(path)],
        cwd=ROOT, env=environment, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} child failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(rows: int = 1_000_000, subjects: int = 2_000, postgres_server: str | None = None, emit: Emit = print) -> None:
    with tempfile.TemporaryDirectory(prefix="trialstack-bench-labs-") as scratch:
        directory = Path(scratch)
        full, quarter = directory / "results.csv", directory / "results-quarter.csv"
        emit(f"generating {rows:,} results for {subjects:,} subjects ...")
        generate(full, rows, subjects)
        generate(quarter, rows // 4, subjects)
        emit(f"file: {full.stat().st_size / 1e6:,.0f} MB; quarter: {quarter.stat().st_size / 1e6:,.0f} MB")
        backends: list[tuple[str, AbstractContextManager[str]]] = [("sqlite", scratch_sqlite(directory))]
        if postgres_server:
            backends.append(("postgresql", scratch_postgres(postgres_server)))
        for name, scratch_db in backends:
            with scratch_db as url:
                _measure(name, url, full, rows, subjects, emit)
        with scratch_sqlite(directory) as url:
            prepare(url, subjects)
            small = _child("import", url, quarter)
        emit(f"sqlite import of {rows // 4:,} rows: peak RSS {small['rss_mb']:,.0f} MB (memory flat: compare above)")


def _measure(name: str, url: str, path: Path, rows: int, subjects: int, emit: Emit) -> None:
    prepare(url, subjects)
    platform = bootstrap(Settings(database_url=url))
    with platform.engine.connect() as connection:
        emit(f"{name}: {durability(connection)}")
    platform.close()
    baseline = _child("baseline", url, path)
    imported = _child("import", url, path)
    report = imported["report"]
    emit(
        f"{name} import of {rows:,} rows: {imported['seconds']:.1f} s ({rows / imported['seconds']:,.0f} rows/s), "
        f"peak RSS {imported['rss_mb']:,.0f} MB; received {report['received']:,}, unmatched {report['unmatched']:,}, "
        f"graded {report['graded']:,}, alerts {report['alerts']:,}"
    )
    emit(
        f"{name} plain batched INSERT of the same rows: {baseline['seconds']:.1f} s "
        f"({rows / baseline['seconds']:,.0f} rows/s), peak RSS {baseline['rss_mb']:,.0f} MB"
    )
    emit(f"{name} ratio import / plain insert (rows/s): {baseline['seconds'] / imported['seconds']:.2f}×")


if __name__ == "__main__":
    kind, database, file = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    outcome = child_import(database, file) if kind == "import" else child_baseline(database, file)
    print(json.dumps(outcome))
