"""Where a form save spends its time: `python -m benchmarks.save_profile [--saves N] [--postgres URL]`.

The capture benchmark's save (one 20-item form, 30 edit checks; `capture_bench.time_saves`) is timed with its
phases wrapped: each wrapper adds the phase's own time (its time minus the wrapped phases it calls) to a per-save
tally, as wall time and as this thread's CPU time. On PostgreSQL it also counts round trips: psycopg runs with its
pure-Python poll waiter, and every wait for the server's answer is counted under the code that waited.

It measures the code it finds: a phase whose function is gone (renamed, or not written yet) is left out.
Figures are per save, averaged over `--saves` saves after as many warm-up saves.
"""

from __future__ import annotations

import argparse
import collections
import functools
import select
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import capture_bench as bench
from benchmarks.common import Emit, scratch_postgres, scratch_sqlite

PHASES: list[tuple[str, str, str]] = [
    ("trialstack.ledger.uow:UnitOfWork.__enter__", "", "connect + BEGIN"),
    ("trialstack.capture.handlers:rules_in_force", "", "read: rules in force"),
    ("trialstack.capture.handlers:load_for_subject", "", "read: rules, study, casebook (one read)"),
    ("trialstack.ledger.store:read_many", "", "read: batched SELECTs (SQL)"),
    ("trialstack.ledger.store:read_stream", "", "read: stream (SQL)"),
    ("trialstack.capture.handlers:decode", "", "fold: decode (Pydantic)"),
    ("trialstack.queries.handlers:decode", "", "fold: decode (Pydantic)"),
    ("trialstack.capture.handlers:evolve", "", "fold: evolve"),
    ("trialstack.capture.decide:save_form", "", "decide (rest)"),
    ("trialstack.capture.decide:evaluate_checks", "", "decide: edit checks"),
    ("trialstack.capture.decide:fold", "", "decide: fold decided events"),
    ("trialstack.capture.decide:_item_event", "", "decide: item events (Pydantic)"),
    ("trialstack.capture.handlers:encode", "", "encode (Pydantic dump)"),
    ("trialstack.queries.handlers:encode", "", "encode (Pydantic dump)"),
    ("trialstack.capture.handlers:_append", "", "handler: append glue, cache"),
    ("trialstack.ledger.store:lock_study_head", "", "append: lock study head (SQL)"),
    ("trialstack.ledger.store:current_stream_version", "", "append: SELECT max(version) (SQL)"),
    ("trialstack.ledger.uow:UnitOfWork._record", "", "append: canonical JSON + hash"),
    ("trialstack.ledger.store:insert_events", "", "append: INSERT ledger_event (SQL)"),
    ("trialstack.ledger.uow:UnitOfWork.append", "", "append (rest)"),
    ("trialstack.queries.handlers:system_query_state", "", "reactor: query count + open query (SQL)"),
    ("trialstack.ledger.store:write_study_head", "", "commit: UPDATE study_head (SQL)"),
    ("trialstack.ledger.uow:UnitOfWork.commit", "", "commit: COMMIT and the rest"),
]
"""(module:attribute, unused, label): the functions wrapped, in the order the table lists them."""


class Tally:
    """Own time per phase: a stack of open phases, each charged its elapsed time minus its children's."""

    def __init__(self) -> None:
        self.wall: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.cpu: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.trips: collections.Counter[str] = collections.Counter()
        self._open: list[list[Any]] = []

    def wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._open.append([label, time.perf_counter(), time.thread_time(), 0.0, 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                name, wall0, cpu0, child_wall, child_cpu = self._open.pop()
                wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
                self.wall[name] += wall - child_wall
                self.cpu[name] += cpu - child_cpu
                if self._open:
                    self._open[-1][3] += wall
                    self._open[-1][4] += cpu

        return timed

    def waited(self) -> None:
        """One wait for the server's answer, charged to the innermost open phase."""
        self.trips[self._open[-1][0] if self._open else "other"] += 1

    def clear(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        self.trips.clear()


def _resolve(path: str) -> tuple[Any, str] | None:
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = __import__(module_name, fromlist=["_"])
    except ImportError:
        return None
    *owners, name = attribute.split(".")
    for owner in owners:
        target = getattr(target, owner, None)
        if target is None:
            return None
    return (target, name) if hasattr(target, name) else None


@contextmanager
def wrapped(tally: Tally, wiring: Any) -> Iterator[None]:
    """Wrap every phase that exists, each projection's `apply` and each reactor; unwrap after."""
    undo: list[tuple[Any, str, Any]] = []
    for path, _, label in PHASES:
        found = _resolve(path)
        if found is not None:
            owner, name = found
            original = getattr(owner, name)
            undo.append((owner, name, original))
            setattr(owner, name, tally.wrap(label, original))
    for projection in wiring.projections:
        original = projection.apply
        undo.append((projection, "apply", None))
        projection.apply = tally.wrap(f"projection {projection.name}", original)
    reactors = {kind: list(listed) for kind, listed in wiring.reactors.items()}
    for kind, listed in reactors.items():
        wiring.reactors[kind] = [tally.wrap(f"reactor {reactor.__name__}", reactor) for reactor in listed]
    try:
        yield
    finally:
        wiring.reactors.update(reactors)
        for owner, name, original in reversed(undo):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


@contextmanager
def counting_round_trips(tally: Tally) -> Iterator[None]:
    """psycopg with its pure-Python poll waiter, each wait for readable data counted as one round trip."""
    import psycopg.waiting

    class CountingPoll:
        def __init__(self) -> None:
            self._poll = select.poll()
            self._mask = 0

        def register(self, fd: int, mask: int) -> None:
            self._mask = mask
            self._poll.register(fd, mask)

        def modify(self, fd: int, mask: int) -> None:
            self._mask = mask
            self._poll.modify(fd, mask)

        def unregister(self, fd: int) -> None:
            self._poll.unregister(fd)

        def poll(self, timeout: int | None = None) -> list[tuple[int, int]]:
            if self._mask & select.POLLIN and not self._mask & select.POLLOUT:
                tally.waited()
            return self._poll.poll(timeout)

    class Select:
        def __getattr__(self, name: str) -> Any:
            return getattr(select, name)

        def poll(self) -> CountingPoll:
            return CountingPoll()

    # psycopg.connection calls `waiting.wait` through this same module object, so patching it here is enough.
    module: Any = psycopg.waiting
    saved = (module.select, module.wait)
    module.select = Select()
    module.wait = module.wait_poll
    try:
        yield
    finally:
        module.select, module.wait = saved


def profile_backend(
    label: str, scratch: AbstractContextManager[str], saves: int, emit: Emit, without: Sequence[str] = ()
) -> None:
    from trialstack.bootstrap import bootstrap
    from trialstack.clock import FixedClock
    from trialstack.protocol.commands import PublishStudyVersion
    from trialstack.protocol.handlers import publish_study_version
    from trialstack.protocol.version import study_version
    from trialstack.settings import Settings

    with scratch as url:
        platform = bootstrap(
            Settings(database_url=url), clock=FixedClock(datetime(2026, 1, 6, tzinfo=UTC)), migrate=True
        )
        platform.wiring.projections[:] = [p for p in platform.wiring.projections if p.name not in without]
        with platform.unit_of_work(bench.COORDINATOR) as uow:
            publish_study_version(uow, PublishStudyVersion(study_version(bench.bench_definition()), "yaml", "bench"))
            uow.commit()
        subjects = bench.prepare_subjects(platform, 2 * saves)
        tally = Tally()
        counting = counting_round_trips(tally) if label == "postgresql" else nullcontext()
        with counting, wrapped(tally, platform.wiring):
            bench.time_saves(platform, subjects[:saves], seed=0)
            tally.clear()
            cpu, wall = time.thread_time(), time.perf_counter()
            samples = bench.time_saves(platform, subjects[saves:], seed=1)
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            bare = bench.time_bare_commits(platform, saves)
        platform.close()
    tally.wall["other (bench loop, glue)"] += wall - sum(tally.wall.values())
    tally.cpu["other (bench loop, glue)"] += cpu - sum(tally.cpu.values())
    p50, p99, bare_p50 = (bench.percentile(samples, 0.5), bench.percentile(samples, 0.99), bench.percentile(bare, 0.5))
    emit(
        f"{label}: {saves} saves, wall {wall / saves * 1e3:.2f} ms/save (p50 {p50 * 1e3:.2f}, p99 {p99 * 1e3:.2f};"
        f" bare commit p50 {bare_p50 * 1e3:.2f}), CPU {cpu / saves * 1e3:.2f} ms/save"
        + (f", {sum(tally.trips.values()) / saves:.1f} round trips/save" if tally.trips else "")
    )
    emit(f"  {'phase':<42} {'wall ms':>8} {'CPU ms':>8}" + (f" {'trips':>6}" if tally.trips else ""))
    for name, value in sorted(tally.wall.items(), key=lambda item: item[1], reverse=True):
        line = f"  {name:<42} {value / saves * 1e3:8.3f} {tally.cpu[name] / saves * 1e3:8.3f}"
        if tally.trips:
            line += f" {tally.trips.get(name, 0) / saves:6.2f}"
        emit(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--saves", type=int, default=300)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--without", action="append", default=[], metavar="PROJECTION", help="leave a projection out (its name)"
    )
    options = parser.parse_args(argv)
    try:
        if options.backend in ("sqlite", "both"):
            with tempfile.TemporaryDirectory() as directory:
                profile_backend("sqlite", scratch_sqlite(Path(directory)), options.saves, print, options.without)
        if options.backend in ("postgresql", "both"):
            profile_backend("postgresql", scratch_postgres(options.postgres), options.saves, print, options.without)
    except Exception:
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
