"""Crash trials: kill -9 the demo's writers at a random moment, restart, and check the ledger lost and tore nothing.

Each trial starts a child process (`writer.py`) that runs the demo simulation through the real command handlers
and journals every unit of work: its events before the commit, an acknowledgement after `commit()` returned.
Once the child is writing, the parent waits a random delay and sends SIGKILL. Then, on a fresh connection (the
restart: SQLite recovers its WAL, PostgreSQL has rolled back the dead session):

- every acknowledged unit is in the ledger, exactly the events it journalled (same study, position, hash);
- no unit is half-written: the events of every correlation id written during the trial are exactly the set its
  intent named (policy reactions included), or the unit is absent altogether (killed before its commit);
- nothing was written that no intent names;
- `verify` finds every hash chain intact;
- `rebuild` replays the ledger into the same read models: the projections checksum before and after is equal.

SIGKILL ends the process, not the machine: the operating system still holds what was written, so this proves
atomicity and that an acknowledgement means committed, not that fsync reaches the disk (power loss).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import func, make_url, select, text

from trialstack.bootstrap import Platform, bootstrap
from trialstack.errors import TrialStackError
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor
from trialstack.ledger.projections import projections_checksum, rebuild
from trialstack.ledger.schema import ledger_event
from trialstack.ledger.verify import verify
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.reliability.journal import EventKey, read_journal
from trialstack.reliability.keys import vault_key_for
from trialstack.settings import Settings
from trialstack.simulation.simulator import DEFAULT_START
from trialstack.standards.loader import load_study_file

OPERATOR = Actor("system:reliability", "study_builder")
READY_TIMEOUT = 120.0


@dataclass
class TrialResult:
    number: int
    kill_after: float
    intents: int = 0
    acknowledged: int = 0
    committed_unacknowledged: int = 0
    not_committed: int = 0
    events: int = 0
    verified_events: int = 0
    checksum: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class CrashReport:
    database: str
    trials: list[TrialResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(not trial.problems for trial in self.trials)

    @property
    def commands_checked(self) -> int:
        return sum(trial.intents for trial in self.trials)

    def total(self, name: str) -> int:
        return sum(int(getattr(trial, name)) for trial in self.trials)

    def summary(self) -> str:
        problems = [f"  trial {t.number}: {p}" for t in self.trials for p in t.problems]
        return "\n".join(
            [
                f"{len(self.trials)} kill -9 trials on {self.database}",
                f"commands checked: {self.commands_checked} ({self.total('acknowledged')} acknowledged, "
                f"{self.total('committed_unacknowledged')} committed but killed before the acknowledgement, "
                f"{self.total('not_committed')} killed before the commit)",
                f"events checked against the journal: {self.total('events')}",
                f"verify after the last trial: {self.trials[-1].verified_events if self.trials else 0} events intact",
                f"rebuild checksum equal to the projections' in {sum(not t.problems for t in self.trials)} trials",
                *(["problems:", *problems] if problems else ["no lost, extra or half-written command"]),
            ]
        )


def prepare(database_url: str, study: Path) -> str:
    """Migrate the database and publish the study (a no-op when it is already in force); the study id."""
    definition = load_study_file(study)
    platform = bootstrap(Settings.from_env(database_url), migrate=True)
    try:
        with platform.unit_of_work(OPERATOR) as uow:
            publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", study.name))
            uow.commit()
    finally:
        platform.close()
    return definition.study.id


def _last_moment(platform: Platform) -> datetime:
    with platform.engine.connect() as connection:
        last = connection.execute(select(func.max(ledger_event.c.recorded_at))).scalar()
    if not last:
        return DEFAULT_START
    return datetime.fromisoformat(str(last).replace("Z", "+00:00"))


def _last_id(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return int(connection.execute(select(func.max(ledger_event.c.id))).scalar() or 0)


def _start_writer(
    database_url: str, journal: Path, study_id: str, seed: int, start: datetime, subjects: int, stderr: IO[bytes]
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "trialstack.reliability.writer", database_url, str(journal),
        "--study", study_id, "--seed", str(seed), "--start", start.isoformat(), "--subjects", str(subjects),
    ]  # fmt: skip
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)


def _wait_until_ready(process: subprocess.Popen[bytes], journal: Path, errors: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not read_journal(journal).ready:
        if process.poll() is not None:
            error = errors.read_text(encoding="utf-8", errors="replace")
            raise TrialStackError(f"the writer exited with {process.returncode} before writing:\n{error[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise TrialStackError(f"the writer was not ready within {READY_TIMEOUT:.0f} s")
        time.sleep(0.05)


def run_trial(
    database_url: str,
    study_id: str,
    number: int,
    folder: Path,
    rng: random.Random,
    *,
    max_delay: float,
    subjects: int,
    seed: int,
) -> TrialResult:
    """Start the writers, kill them at a random moment, restart on the database and check it."""
    platform = bootstrap(Settings.from_env(database_url))
    try:
        start, after_id = _last_moment(platform) + timedelta(days=1), _last_id(platform)
    finally:
        platform.close()
    journal = folder / f"trial-{number:04d}.jsonl"
    journal.unlink(missing_ok=True)
    result = TrialResult(number, round(rng.uniform(0.0, max_delay), 3))
    errors = journal.with_suffix(".stderr")
    with errors.open("wb") as stderr:
        process = _start_writer(database_url, journal, study_id, seed, start, subjects, stderr)
        try:
            _wait_until_ready(process, journal, errors)
            try:
                process.wait(timeout=result.kill_after)  # returns early only if the writer ends by itself
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait()
    failure = errors.read_text(encoding="utf-8", errors="replace")
    if process.returncode != -signal.SIGKILL or "Traceback" in failure:
        result.problems.append(f"the writer failed before the kill (exit {process.returncode}): {failure[-2000:]}")
    check_trial(database_url, journal, after_id, result)
    return result


def _wait_for_dead_sessions(platform: Platform) -> bool:
    """PostgreSQL ends a killed client's session when it reads the closed socket, after whatever the client sent
    before (a COMMIT included): wait until no other session is on the database before reading it (False when
    one is still there after 30 s)."""
    if platform.engine.dialect.name != "postgresql":
        return True
    platform.engine.dispose()  # our own idle pooled sessions are not the writer's
    others = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 30
    while True:
        with platform.engine.connect() as connection:
            if not connection.execute(others).scalar():
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def check_trial(database_url: str, journal_path: Path, after_id: int, result: TrialResult) -> None:
    """Compare the ledger written after `after_id` with the journal; verify; rebuild and compare checksums."""
    journal = read_journal(journal_path)
    result.problems += journal.problems
    platform = bootstrap(Settings.from_env(database_url), migrate=True)
    try:
        if not _wait_for_dead_sessions(platform):
            result.problems.append("another session was still on the database 30 s after the kill")
        written: dict[str | None, list[EventKey]] = defaultdict(list)
        with platform.engine.connect() as connection:
            for page in store.iter_all(connection, after_id):
                for event in page:
                    written[event.correlation_id].append((event.study_id, event.study_seq, event.hash))
        result.intents = len(journal.intents)
        for cid, intent in journal.intents.items():
            found = written.pop(cid, [])
            result.events += len(found)
            if not found and not intent.acknowledged:
                result.not_committed += 1
            elif sorted(found) != sorted(intent.events):
                state = "acknowledged" if intent.acknowledged else "unacknowledged"
                result.problems.append(
                    f"{state} command {cid}: journalled {len(intent.events)} events, ledger holds {len(found)}"
                    + (" (half-written)" if found else " (lost)")
                )
            elif intent.acknowledged:
                result.acknowledged += 1
            else:
                result.committed_unacknowledged += 1
        for unexplained, keys in written.items():
            result.problems.append(f"{len(keys)} events of correlation id {unexplained} that no intent names")
        with platform.engine.connect() as connection:
            report = verify(connection, workers=1)
        result.verified_events = report.events
        result.problems += [
            f"verify: {b.study_id} broken at study_seq {b.study_seq}: {b.reason}" for b in report.broken
        ]
        before = projections_checksum(platform.engine, platform.wiring)
        rebuild(platform.engine, platform.wiring)
        after = projections_checksum(platform.engine, platform.wiring)
        result.checksum = after
        if before != after:
            result.problems.append(f"rebuild changed the projections checksum: {before} before, {after} after")
    finally:
        platform.close()


def run_crash_trials(
    database_url: str,
    study: Path,
    folder: Path,
    *,
    trials: int,
    seed: int | None = None,
    max_delay: float = 2.0,
    subjects: int = 4,
    progress: Callable[[TrialResult], None] | None = None,
    stop_on_problem: bool = True,
) -> CrashReport:
    """`trials` kill -9 trials on `database_url`; journals are kept in `folder`."""
    rng = random.Random(seed)
    report = CrashReport(make_url(database_url).render_as_string(hide_password=True))
    with vault_key_for(database_url, folder):
        study_id = prepare(database_url, study)
        for number in range(1, trials + 1):
            trial_seed = rng.randrange(10**6)
            result = run_trial(
                database_url, study_id, number, folder, rng, max_delay=max_delay, subjects=subjects, seed=trial_seed
            )
            report.trials.append(result)
            if progress is not None:
                progress(result)
            if result.problems and stop_on_problem:
                break
    return report
