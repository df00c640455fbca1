"""Folded stream states across units of work, and optimistic concurrency without re-reading, on both backends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import psycopg
import pytest
from sqlalchemy import Column, Connection, MetaData, String, Table
from sqlalchemy.exc import DBAPIError

from trialstack.bootstrap import Platform
from trialstack.ledger import Actor, ConcurrencyConflict, NewEvent, RecordedEvent, store
from trialstack.ledger.cache import Folded
from trialstack.ledger.uow import UnitOfWork
from trialstack.ledger.verify import verify
from trialstack.ledger.wiring import LedgerWiring

ACTOR = Actor(id="user:alice", role="study_coordinator")
STREAM = ("subject", "S1/001")


@dataclass(frozen=True)
class Tally:
    """A toy state: the values noted on a stream, in order."""

    values: tuple[int, ...] = ()
    version: int = 0


def fold(state: Tally, events: Sequence[RecordedEvent]) -> Tally:
    values = state.values + tuple(int(e.payload["n"]) for e in events)
    return replace(state, values=values, version=events[-1].stream_version)


def noted(n: int) -> NewEvent:
    return NewEvent("ValueNoted", {"n": n})


def save(platform: Platform, n: int) -> Tally:
    """Load the tally, append one value at the version it was loaded at, commit."""
    with platform.unit_of_work(ACTOR) as uow:
        state = uow.load(*STREAM, Tally(), fold)
        uow.append("S1", *STREAM, [noted(n)], expected_version=state.version)
        uow.commit()
    return state


def cached(platform: Platform) -> Tally | None:
    entry = platform.cache.get(*STREAM)
    return entry.state if isinstance(entry, Folded) else None


def test_a_loaded_state_reaches_the_cache_only_when_its_unit_commits(platform: Platform) -> None:
    save(platform, 1)
    save(platform, 2)
    assert cached(platform) == Tally((1,), 1)
    with platform.unit_of_work(ACTOR) as uow:
        assert uow.load(*STREAM, Tally(), fold) == Tally((1, 2), 2)
        uow.append("S1", *STREAM, [noted(3)], expected_version=2)
        assert uow.load(*STREAM, Tally(), fold) == Tally((1, 2, 3), 3)  # its own append, not committed
    assert cached(platform) == Tally((1,), 1)  # rolled back: nothing of that unit was cached
    assert save(platform, 3) == Tally((1, 2), 2)
    assert cached(platform) == Tally((1, 2), 2)


def test_the_state_a_unit_reached_with_its_own_append_is_cached_when_it_commits(platform: Platform) -> None:
    with platform.unit_of_work(ACTOR) as uow:
        state = uow.load(*STREAM, Tally(), fold)
        (event,) = uow.append("S1", *STREAM, [noted(1)], expected_version=state.version)
        uow.remember(*STREAM, 2, lambda: Tally((9,), 2))  # not the version it reached: ignored
        uow.remember(*STREAM, 1, lambda: fold(state, [event]))
        uow.commit()
    assert cached(platform) == Tally((1,), 1)
    with platform.unit_of_work(ACTOR) as uow, platform.engine.connect() as connection:
        assert uow.load(*STREAM, Tally(), fold) == Tally((1,), 1)
        assert store.read_stream(connection, *STREAM)[0].hash == event.hash


@pytest.mark.parametrize(
    "stale",
    [Folded(Tally((7, 7, 7, 7), 4), 4, "0" * 64), Folded(Tally((7,), 1), 1, "0" * 64)],
    ids=["a version the stream never reached", "another event at that version"],
)
def test_a_cached_state_the_ledger_does_not_hold_is_dropped_and_the_stream_folded_again(
    platform: Platform, stale: Folded[Tally]
) -> None:
    save(platform, 1)
    save(platform, 2)
    platform.cache.clear()
    platform.cache.put(*STREAM, stale)
    with platform.unit_of_work(ACTOR) as uow:
        assert uow.load(*STREAM, Tally(), fold) == Tally((1, 2), 2)
        uow.append("S1", *STREAM, [noted(3)], expected_version=2)
        uow.commit()
    with platform.engine.connect() as connection:
        assert verify(connection).ok


def test_a_stale_expected_version_is_a_conflict_that_writes_nothing(platform: Platform) -> None:
    save(platform, 1)
    with pytest.raises(ConcurrencyConflict) as caught, platform.unit_of_work(ACTOR) as uow:
        uow.append("S1", *STREAM, [noted(2)], expected_version=0)
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    with platform.engine.connect() as connection:
        assert [e.stream_version for e in store.read_stream(connection, *STREAM)] == [1]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_writer_that_loaded_before_another_committed_gets_a_conflict(platform: Platform) -> None:
    """The version `load` observed is the optimistic check: a commit in between makes the append collide.

    On SQLite a unit of work holds the write lock from its start (BEGIN IMMEDIATE), so no other writer can commit
    in between: the interleaving exists on PostgreSQL only, and the test runs there.
    """
    assert platform.engine.dialect.name == "postgresql"
    save(platform, 1)
    with pytest.raises(ConcurrencyConflict) as caught, platform.unit_of_work(ACTOR) as slow:
        state = slow.load(*STREAM, Tally(), fold)
        save(platform, 2)
        slow.append("S1", *STREAM, [noted(3)], expected_version=state.version)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    with platform.engine.connect() as connection:
        assert [e.payload["n"] for e in store.read_stream(connection, *STREAM)] == [1, 2]
        assert verify(connection).ok


class Duplicating:
    """A broken projection: it writes the same primary key twice, which the database refuses."""

    name = "test.duplicating"
    tables = (Table("rm_test_duplicate", MetaData(), Column("k", String(10), primary_key=True)),)
    event_types = frozenset({"ValueNoted"})

    def apply(self, connection: Connection, events: Sequence[RecordedEvent]) -> None:
        marker = "%s" if connection.dialect.name == "postgresql" else "?"
        connection.exec_driver_sql(f"INSERT INTO rm_test_duplicate (k) VALUES ({marker})", [("a",), ("a",)])


def test_a_write_refused_at_commit_commits_nothing_and_the_next_unit_works(platform: Platform) -> None:
    """On PostgreSQL the read-model writes and the COMMIT go out together: a refused write fails them all."""
    broken = LedgerWiring()
    broken.add_projection(Duplicating())
    Duplicating.tables[0].create(platform.engine)
    unit = UnitOfWork(platform.engine, broken, platform.clock, ACTOR, cache=platform.cache)
    with pytest.raises((DBAPIError, psycopg.Error)), unit as uow:
        uow.load(*STREAM, Tally(), fold)
        uow.append("S1", *STREAM, [noted(1)], expected_version=0)
        uow.commit()
    assert cached(platform) is None
    with platform.engine.connect() as connection:
        assert store.count_events(connection) == 0
        assert connection.exec_driver_sql("SELECT count(*) FROM rm_test_duplicate").scalar() == 0
    assert save(platform, 1) == Tally()
    with platform.engine.connect() as connection:
        assert [e.payload["n"] for e in store.read_stream(connection, *STREAM)] == [1]
