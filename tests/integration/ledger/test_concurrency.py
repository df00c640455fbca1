"""Concurrent writers: one winner per stream version, contiguous study_seq and a valid chain, on both backends."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

from trialstack.bootstrap import Platform, bootstrap
from trialstack.ledger import Actor, ConcurrencyConflict, NewEvent, store
from trialstack.ledger.verify import verify
from trialstack.settings import Settings

ACTOR = Actor(id="user:carol", role="study_coordinator")


def _race_for_version_one(platform: Platform, barrier: threading.Barrier, outcomes: list[str], n: int) -> None:
    barrier.wait()
    try:
        with platform.unit_of_work(ACTOR) as uow:
            uow.append("S1", "subject", "S1/001", [NewEvent("ValueNoted", {"writer": n})], expected_version=0)
            uow.commit()
        outcomes.append("won")
    except ConcurrencyConflict:
        outcomes.append("conflict")


def test_exactly_one_thread_wins_each_stream_version(platform: Platform) -> None:
    writers = 8
    barrier = threading.Barrier(writers)
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=_race_for_version_one, args=(platform, barrier, outcomes, n)) for n in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(outcomes) == {"won": 1, "conflict": writers - 1}
    with platform.engine.connect() as connection:
        assert [e.stream_version for e in store.read_stream(connection, "subject", "S1/001")] == [1]


def _append_many(database_url: str, worker: int, count: int) -> None:
    platform = bootstrap(Settings(database_url=database_url))
    try:
        for n in range(count):
            for _attempt in range(50):
                try:
                    with platform.unit_of_work(ACTOR) as uow:
                        stream = f"S1/{worker:02d}"
                        version = uow.stream_version("subject", stream)
                        uow.append(
                            "S1", "subject", stream, [NewEvent("ValueNoted", {"n": n})], expected_version=version
                        )
                        uow.append(
                            "S1", "subject", "S1/shared", [NewEvent("Touched", {"by": worker})], expected_version=None
                        )
                        uow.commit()
                    break
                except ConcurrencyConflict:
                    continue
    finally:
        platform.close()


def test_processes_appending_to_one_study_keep_study_seq_contiguous_and_the_chain_valid(
    platform: Platform, database_url: str
) -> None:
    workers, per_worker = 4, 15
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_append_many, args=(database_url, w, per_worker)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    with platform.engine.connect() as connection:
        events = list(store.iter_study(connection, "S1"))
        report = verify(connection, "S1")
    assert [e.study_seq for e in events] == list(range(1, 2 * workers * per_worker + 1))
    assert report.ok, report.broken
    shared = [e.stream_version for e in events if e.stream_id == "S1/shared"]
    assert shared == list(range(1, workers * per_worker + 1))


def test_threads_on_different_studies_append_in_parallel_without_interference(platform: Platform) -> None:
    def write(study: str) -> None:
        for n in range(20):
            with platform.unit_of_work(ACTOR) as uow:
                uow.append(study, "subject", f"{study}/001", [NewEvent("ValueNoted", {"n": n})], expected_version=n)
                uow.commit()

    threads = [threading.Thread(target=write, args=(f"S{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with platform.engine.connect() as connection:
        report = verify(connection)
        assert report.ok and report.studies == 4 and report.events == 80
