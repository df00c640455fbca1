"""The crash trial's child process: the demo's writers, journalling every unit of work, until it is killed.

    python -m trialstack.reliability.writer DATABASE_URL JOURNAL --seed S --start ISO_MOMENT [--subjects N]

It runs the demo simulation (site, monitor and data-manager work through the real command handlers) again and
again, each run a year after the previous one began, on a platform whose units of work write their intent to
the journal before committing and their acknowledgement after `commit()` returned (journal.py).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path

from trialstack.bootstrap import Platform, bootstrap
from trialstack.clock import FixedClock
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.reliability.journal import Journal
from trialstack.settings import Settings
from trialstack.simulation.simulator import Simulation

RUN_SPACING = timedelta(days=365)


def journaled(platform: Platform, journal: Journal) -> Platform:
    """The platform, its units of work journalling what they commit: intent before, acknowledgement after."""
    open_unit = platform.unit_of_work

    def unit_of_work(actor: Actor, correlation_id: str | None = None) -> UnitOfWork:
        uow = open_unit(actor, correlation_id)
        commit = uow.commit

        def journaled_commit() -> list[RecordedEvent]:
            events = uow.settle()
            if events:
                journal.intent(uow.correlation_id, events)
            committed = commit()
            if events:
                journal.ack(uow.correlation_id)
            return committed

        uow.commit = journaled_commit  # type: ignore[method-assign]
        return uow

    platform.unit_of_work = unit_of_work  # type: ignore[method-assign]
    return platform


def run(database_url: str, journal: Journal, study_id: str, seed: int, start: datetime, subjects: int) -> None:
    """Simulate the study's conduct run after run, forever (the parent kills this process)."""
    platform = journaled(bootstrap(Settings.from_env(database_url), clock=FixedClock(start)), journal)
    journal.ready()
    moment, run_number = start, 0
    while True:
        simulation = Simulation(platform, study_id, seed=seed * 10_000 + run_number, subjects=subjects, start=moment)
        simulation.run()
        run_number += 1
        moment += RUN_SPACING


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trialstack.reliability.writer")
    parser.add_argument("database_url")
    parser.add_argument("journal")
    parser.add_argument("--study", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--start", required=True, help="ISO moment of the first simulated action (UTC)")
    parser.add_argument("--subjects", type=int, default=4)
    args = parser.parse_args(argv)
    journal = Journal(Path(args.journal))
    run(args.database_url, journal, args.study, args.seed, datetime.fromisoformat(args.start), args.subjects)


if __name__ == "__main__":
    main(sys.argv[1:])
